"""Guests as every hypervisor has them: the neutral model each platform maps its VMs and
containers onto, and the checks written once over all of them."""

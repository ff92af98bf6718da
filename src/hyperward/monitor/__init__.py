"""`hyperward monitor`: sample every running guest, learn what is normal for it, alert on what is not.

Data flows one way here too: a stats source (libvirt's bulk call, or a recorded one) gives
counters; rates.py turns them into rates; detect.py compares rates to each VM's own baseline;
alerts.py de-duplicates; sinks.py delivers; store.py keeps samples, alerts and baselines.
"""

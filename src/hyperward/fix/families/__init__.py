"""One module per family of fixes; plan.fixers() imports every module here for its registrations."""

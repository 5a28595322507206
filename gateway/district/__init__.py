"""Many sites in one deployment: which replica owns which site (leases in the shared state
store)."""

"""Where a run's records go: the run directory (always, first) and W&B (fail-safe)."""

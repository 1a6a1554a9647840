"""`lde backfill`: history from files judged day by day as the service would have judged it (see
ops.runtime.backfill.run)."""

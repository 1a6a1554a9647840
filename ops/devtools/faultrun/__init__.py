"""The fault-test harness: several `lde up` workers (production mode) on one standalone Tansu broker
and one shared redis-server, fed a seeded workload with a ground-truth ledger, then checked.

Each worker has its own data directory (chDB allows one process per path), so after the workers stop
the harness reads every worker's ClickHouse rows (in a subprocess each) and merges them per
(student, day, source) by highest version: what one shared ReplacingMergeTree would keep. The table
state is read back from the `lde-activity-changelog` topic (last value per student).

Used by tests/reliability (pytest) and `python -m ops.devtools.faultrun soak|dump` (Makefile: soak).
"""

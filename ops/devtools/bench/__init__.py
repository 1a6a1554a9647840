"""`make bench` (`python -m ops.devtools.bench`): speed and memory figures, measured in one run on one broker,
written to BENCHMARKS.md. Timing never lives in tests; it lives here.

Every figure is measured on this machine in the same run: the full LDE pipeline (a real `lde up` worker
process: decode, validate, de-duplicate, bucket, state update, changelog, ClickHouse aggregates), the
two Faust reference points (a naive one-event-per-message design with a tumbling windowed table, and a
no-op agent), the evaluator sweep, state memory, the ClickHouse sink, ingest and the daily job.
"""

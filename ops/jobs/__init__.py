"""Scheduled work and what it produces: the daily job (trends, compaction, retention), the privacy
check, the weekly reports and every rendering of a report."""

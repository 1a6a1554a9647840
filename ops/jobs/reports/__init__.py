"""Reports: what staff and students read about engagement, and every audited read of personal data.

- weekly: the weekly reports (ReportJob): build, render, deliver (SMTP or a folder), audit;
- student: the student's own view (`lde student show`) and the student's own weekly report;
- personal: reads of personal data through the access policy, each audited, and the anonymised export;
- render, pdf, format: HTML email and text, PDF, and what they share (no I/O).
The queries behind them are in sinks.clickhouse (reports, students).
"""

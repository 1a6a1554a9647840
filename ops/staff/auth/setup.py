"""Builds the route guard and the sign-in flow from the settings: the verifiers that are configured."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import redis

from models.access import StaffDirectory
from ops.http.proxy import parse_networks
from ops.http.ratelimit import FailureLimiter
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.api_tokens import ApiTokens
from ops.staff.auth.authenticator import Authenticator
from ops.staff.auth.jwks import Provider
from ops.staff.auth.local import ensure_operator_token
from ops.staff.auth.sessions import SessionStore
from ops.staff.auth.signin import SignIn
from ops.staff.auth.tokens_jwt import JwtValidator
from ops.staff.auth.web import Guard
from sinks.clickhouse import ClickHouseStore

#: The demo's engagement officer (ops.devtools.demo loads them; the one-time local link signs them in).
DEMO_OFFICER = ("DEMO-SEO", "Demo Engagement Officer", "demo.officer@example.ac.uk")


def build_auth(
    settings: Settings,
    store: ClickHouseStore,
    redis_client: redis.Redis,
    metrics: Metrics,
    directory: Callable[[], StaffDirectory],
) -> tuple[Guard, SignIn, ApiTokens]:
    """The guard and sign-in of a running service (writes the local operator token into the data
    folder, and the demo's one-time link when asked for)."""
    provider = jwt = None
    if settings.oidc_issuer:
        provider = Provider(settings.oidc_issuer, settings.oidc_jwks_min_refetch_seconds)
        jwt = JwtValidator(
            provider,
            audience=settings.oidc_audience or settings.oidc_client_id,
            staff_claim=settings.oidc_staff_claim,
            leeway=settings.oidc_leeway_seconds,
        )
    tokens = ApiTokens(store, directory)
    limiter = FailureLimiter(settings.auth_failures_per_minute)
    sessions = SessionStore(redis_client, settings.session_minutes * 60)
    authenticator = Authenticator(
        metrics=metrics,
        proxies=parse_networks(settings.trusted_proxies),
        operator_token=ensure_operator_token(settings.operator_token_path),
        limiter=limiter,
        jwt=jwt,
        api_tokens=tokens,
        sessions=sessions,
    )
    guard = Guard(settings, metrics, authenticator, directory, csrf_ok=sessions.csrf_ok)
    signin = SignIn(
        settings, sessions, directory, metrics, limiter, provider, jwt, known_good=authenticator.good
    )
    if settings.mode == "embedded" and settings.demo_sign_in:
        write_private(settings.data_dir / "demo-sign-in.url", signin.demo_link(DEMO_OFFICER[0]) + "\n")
        for staff_id in settings.demo_sign_in_staff:
            link = signin.demo_link(staff_id) + "\n"
            write_private(settings.data_dir / demo_link_name(staff_id), link)
    return guard, signin, tokens


def demo_link_name(staff_id: str) -> str:
    """The file (in the data folder) holding the one-time demo link of a member of staff."""
    return f"demo-sign-in-{''.join(c for c in staff_id if c.isalnum() or c in '-_')}.url"


def write_private(path: Path, text: str) -> None:
    """A file only this user may read (0600): the demo link is a credential."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)

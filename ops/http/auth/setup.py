"""Builds the route guard from the settings: the verifiers that are configured, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.access import StaffDirectory
from ops.http.auth.authenticator import Authenticator
from ops.http.auth.jwks import Provider
from ops.http.auth.local import ensure_operator_token
from ops.http.auth.proxy import parse_networks
from ops.http.auth.ratelimit import FailureLimiter
from ops.http.auth.tokens_jwt import JwtValidator
from ops.http.auth.web import Guard
from ops.settings import Settings


def build_guard(settings: Settings, lde: Any, directory: Callable[[], StaffDirectory]) -> Guard:
    """The guard of a running service (writes the local operator token into the data folder)."""
    jwt = None
    if settings.oidc_issuer:
        provider = Provider(settings.oidc_issuer, settings.oidc_jwks_min_refetch_seconds)
        jwt = JwtValidator(
            provider,
            audience=settings.oidc_audience or settings.oidc_client_id,
            staff_claim=settings.oidc_staff_claim,
            leeway=settings.oidc_leeway_seconds,
        )
    authenticator = Authenticator(
        jwt=jwt,
        metrics=lde.metrics,
        proxies=parse_networks(settings.trusted_proxies),
        operator_token=ensure_operator_token(settings.operator_token_path),
        limiter=FailureLimiter(settings.auth_failures_per_minute),
    )
    return Guard(settings, lde.metrics, authenticator, directory)

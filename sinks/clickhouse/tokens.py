"""Personal API tokens in ClickHouse (issue 15): only each token's SHA-256 is stored; a revocation is
a newer version of the row (ReplacingMergeTree), so the history of who issued and revoked what stays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sinks.clickhouse.schema import API_TOKEN_COLUMNS
from sinks.clickhouse.store import ClickHouseStore


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: str
    token_sha256: str
    staff_id: str
    label: str
    issued_by: str
    issued_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def public(self) -> dict[str, str | None]:
        """What a listing shows: never the hash."""
        return {
            "token_id": self.token_id,
            "staff_id": self.staff_id,
            "label": self.label,
            "issued_by": self.issued_by,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


_SELECT = (
    "SELECT token_id, token_sha256, staff_id, label, issued_by, issued_at, expires_at, revoked_at "
    "FROM api_tokens FINAL "
)


def write_token(store: ClickHouseStore, row: TokenRow, at: datetime) -> None:
    values = (
        row.token_id,
        row.token_sha256,
        row.staff_id,
        row.label,
        row.issued_by,
        row.issued_at,
        row.expires_at,
        row.revoked_at,
        at,
    )
    store.insert("api_tokens", [values], API_TOKEN_COLUMNS)


def token_by_hash(store: ClickHouseStore, digest: str) -> TokenRow | None:
    rows = store.query(_SELECT + "WHERE token_sha256 = {h:String}", {"h": digest})
    return TokenRow(*rows[0]) if rows else None


def token_by_id(store: ClickHouseStore, token_id: str) -> TokenRow | None:
    rows = store.query(_SELECT + "WHERE token_id = {i:String}", {"i": token_id})
    return TokenRow(*rows[0]) if rows else None


def all_tokens(store: ClickHouseStore) -> list[TokenRow]:
    return [TokenRow(*r) for r in store.query(_SELECT + "ORDER BY issued_at")]

"""HTTP Basic credentials for upstream sources (xAPI's usual way: an LRS key and secret per client).

Secrets are stored only as salted scrypt hashes (hashlib; `lde collector hash-secret` makes one), in
LDE_COLLECTOR_BASIC_CREDENTIALS: {"<source>": {"<key>": "scrypt$16384$8$1$<salt>$<hash>"}}. A check
is deliberately slow (tens of milliseconds), so a good credential, once verified, is remembered for
the process by an HMAC of the header under a per-process key: a client sending 200 requests a second
costs one scrypt, and the remembered form is useless outside this process.

Failures are limited per client address and per key (issue 22), and the limit is asked BEFORE the
hash (`wait`): a flood of bad secrets costs a 429, not an scrypt each, so it cannot starve the
service. A header verified before is never held up by others' failures (ops.http.ratelimit).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping

from ops.http.ratelimit import FailureLimiter, hold_up

SCHEME = "scrypt"
#: scrypt's cost (RFC 7914: N=2^14, r=8, p=1 is the interactive-login recommendation) and sizes.
N, R, P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
_MAXMEM = 64 * 1024 * 1024
_REMEMBERED = 10_000


def hash_secret(secret: str, *, salt: bytes | None = None, n: int = N, r: int = R, p: int = P) -> str:
    """The stored form of a secret: scheme, cost, salt and hash, '$'-separated (base64 fields)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    derived = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=HASH_BYTES)
    fields = (
        SCHEME,
        str(n),
        str(r),
        str(p),
        base64.b64encode(salt).decode(),
        base64.b64encode(derived).decode(),
    )
    return "$".join(fields)


def check_hash_format(stored: str) -> str | None:
    """Why a stored hash cannot be used (a settings error to report at start), or None."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return "not an scrypt hash from `lde collector hash-secret`"
    try:
        n, r, p = (int(v) for v in parts[1:4])
        base64.b64decode(parts[4], validate=True)
        base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return "a malformed scrypt hash"
    if n < 2**10 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16:
        return "scrypt cost out of range"
    return None


def verify_secret(secret: str, stored: str) -> bool:
    """Whether `secret` is the one `stored` was made from (constant-time comparison of the hashes)."""
    if check_hash_format(stored) is not None:
        return False
    _, n, r, p, salt, expected = stored.split("$")
    derived = hashlib.scrypt(
        secret.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_MAXMEM,
        dklen=len(base64.b64decode(expected)),
    )
    return hmac.compare_digest(derived, base64.b64decode(expected))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(key, secret) of an 'Authorization: Basic ...' header, or None when it is not one."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, colon, secret = decoded.partition(":")
    if not colon or not key:
        return None
    return key, secret


class BasicCredentials:
    """One source's keys and their hashes, with verified headers remembered (see the module note)."""

    def __init__(
        self,
        hashes: Mapping[str, str],
        failures_per_minute: float = 10.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hashes = {key: value for key, value in hashes.items() if check_hash_format(value) is None}
        self._pepper = secrets.token_bytes(32)
        self._good: set[bytes] = set()
        self.by_address = FailureLimiter(failures_per_minute, now=now)
        self.by_key = FailureLimiter(failures_per_minute, now=now)

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def _remembered(self, header: str | None) -> bytes:
        return hmac.digest(self._pepper, (header or "").strip().encode(), "sha256")

    def wait(self, header: str | None, address: str) -> float:
        """Seconds before this header may be checked (0: now). Asked before `refusal`, so a limited
        client costs no scrypt; a header verified before is never held up. On the event loop."""
        parsed = parse_basic(header)
        if parsed is None:
            return 0.0
        key_wait = self.by_key.wait(parsed[0][:256])
        return hold_up(self.by_address.wait(address), key_wait, self._remembered(header) in self._good)

    def failed(self, header: str | None, address: str) -> None:
        """Count a refused Basic header against its address and its key. On the event loop."""
        parsed = parse_basic(header)
        if parsed is not None:
            self.by_address.failed(address)
            self.by_key.failed(parsed[0][:256])

    def needs_hashing(self, header: str | None) -> bool:
        """Whether checking this header costs a scrypt (a Basic header not verified before): the
        caller then checks it off the event loop."""
        return parse_basic(header) is not None and self._remembered(header) not in self._good

    def refusal(self, header: str | None) -> str | None:
        """Why a Basic header is refused, or None when its key and secret are good."""
        parsed = parse_basic(header)
        if parsed is None:
            return "missing Basic credentials: send 'Authorization: Basic base64(key:secret)'"
        remembered = self._remembered(header)
        if remembered in self._good:
            return None
        key, secret = parsed
        stored = self.hashes.get(key)
        # An unknown key costs a hash too, so timing does not tell which keys exist.
        ok = verify_secret(secret, stored if stored is not None else _dummy()) and stored is not None
        if not ok:
            return "invalid key or secret for this endpoint"
        if len(self._good) >= _REMEMBERED:
            self._good.clear()
        self._good.add(remembered)
        return None


@functools.cache
def _dummy() -> str:
    """A hash to check unknown keys against (made on first need: it costs one scrypt)."""
    return hash_secret("", salt=b"\0" * SALT_BYTES)

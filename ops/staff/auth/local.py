"""The local operator token: whoever holds the data folder is the operator (issue 15).

At start the service creates `DATA_DIR/operator.token` (mode 0600, 32 random bytes) unless one is there
(several workers may share a folder); the CLI presents it as a bearer token, with the shell user's name
for the audit. Delete the file and restart to rotate it.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
from pathlib import Path

#: Header in which the CLI names the shell user (recorded in the audit, never trusted for access).
OS_USER_HEADER = "X-LDE-OS-User"
_SAFE_USER = re.compile(r"[^A-Za-z0-9._@-]")


def ensure_operator_token(path: Path) -> str:
    """The token in `path`, created (0600, atomically) when missing or empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            existing = read_operator_token(path)
            if existing:
                os.chmod(path, 0o600)
                return existing
            path.unlink(missing_ok=True)  # an empty or broken file: make a new token
            continue
        token = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token
    raise OSError(f"could not create the operator token {path}")


def read_operator_token(path: Path) -> str | None:
    """The token, or None when the file is absent or unreadable by this user (then no operator rights)."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def shell_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers): still audited, as unknown
        return "unknown"


def audit_user(header: str | None) -> str:
    """The shell user named by the CLI, cut to a safe audit label."""
    return _SAFE_USER.sub("_", (header or "unknown").strip())[:64] or "unknown"

"""A small client for the running service's HTTP API (other commands reach chDB data through it,
because only one process may open a chDB path)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from ops.settings import Settings


class ServiceUnavailable(RuntimeError):
    """The service's HTTP API did not answer."""


#: How many times a read is asked in all while the service answers it is busy (503 with Retry-After:
#: shed under load, or while a day is judged), each time after the wait it gives, `timeout` at most.
BUSY_TRIES = 3


def busy_wait(error: urllib.error.HTTPError) -> float | None:
    """The seconds a 503 asks the client to wait (its Retry-After), or None: not a busy answer."""
    retry_after = error.headers.get("Retry-After") if error.code == 503 else None
    return float(retry_after) if retry_after and retry_after.isdigit() else None


class ServiceClient:
    """Presents the local operator token of the data folder (when this user may read it) as a bearer
    token, with the shell user's name for the audit: whoever holds the data folder is the operator."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.base = settings.service_url
        self.timeout = timeout
        self.token_path = settings.operator_token_path

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        from ops.staff.auth.local import OS_USER_HEADER, read_operator_token, shell_user

        out = dict(headers or {})
        token = read_operator_token(self.token_path)  # read each call: the service may have just made it
        if token and "Authorization" not in out:
            out["Authorization"] = f"Bearer {token}"
            out[OS_USER_HEADER] = shell_user()
        return out

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self._call(urllib.request.Request(self.base + path, headers=self._headers(headers)))

    def post(self, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        return self._call(
            urllib.request.Request(self.base + path, data=body, method="POST", headers=self._headers(headers))
        )

    def _call(self, request: urllib.request.Request) -> Any:
        path = request.full_url[len(self.base) :]
        tries = 1
        while True:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                body = error.read().decode(errors="replace")
                wait = busy_wait(error)
                if wait is not None and request.get_method() == "GET" and tries < BUSY_TRIES:
                    tries += 1
                    time.sleep(min(wait, self.timeout))  # a read is safe to ask again, as told
                    continue
                try:
                    return json.loads(body)
                except ValueError:
                    raise ServiceUnavailable(f"{self.base}{path} answered {error.code}") from None
            except (urllib.error.URLError, OSError) as error:
                raise ServiceUnavailable(f"no LDE service at {self.base}: {error}") from None

    def text(self, path: str) -> str:
        request = urllib.request.Request(self.base + path, headers=self._headers(None))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, OSError) as error:
            raise ServiceUnavailable(f"no LDE service at {self.base}: {error}") from None

    def running(self) -> bool:
        try:
            self.get("/health/live")
            return True
        except ServiceUnavailable:
            return False

"""A small client for the running service's HTTP API (other commands reach chDB data through it,
because only one process may open a chDB path)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ops.settings import Settings

#: The header naming the member of staff a request is made for (the service reads it, the CLI sends it).
STAFF_HEADER = "X-LDE-Staff"


class ServiceUnavailable(RuntimeError):
    """The service's HTTP API did not answer."""


class ServiceClient:
    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.base = settings.service_url
        self.timeout = timeout

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self._call(urllib.request.Request(self.base + path, headers=headers or {}))

    def post(self, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        return self._call(
            urllib.request.Request(self.base + path, data=body, method="POST", headers=headers or {})
        )

    def _call(self, request: urllib.request.Request) -> Any:
        path = request.full_url[len(self.base) :]
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            try:
                return json.loads(body)
            except ValueError:
                raise ServiceUnavailable(f"{self.base}{path} answered {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ServiceUnavailable(f"no LDE service at {self.base}: {error}") from None

    def text(self, path: str) -> str:
        try:
            with urllib.request.urlopen(self.base + path, timeout=self.timeout) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, OSError) as error:
            raise ServiceUnavailable(f"no LDE service at {self.base}: {error}") from None

    def running(self) -> bool:
        try:
            self.get("/health/live")
            return True
        except ServiceUnavailable:
            return False

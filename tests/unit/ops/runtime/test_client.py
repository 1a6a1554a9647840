"""The service client presents the data folder's operator token when this user can read it, and
nothing when it cannot (then the service answers 401 to personal-data requests)."""

from __future__ import annotations

from pathlib import Path

from ops.runtime.client import ServiceClient
from ops.settings import Settings
from ops.staff.auth.local import OS_USER_HEADER, ensure_operator_token


def test_the_token_is_presented_when_readable(tmp_path: Path) -> None:
    client = ServiceClient(Settings(data_dir=tmp_path))
    assert client._headers({"X-LDE-Staff": "S1042"}) == {"X-LDE-Staff": "S1042"}  # no service yet: no token
    token = ensure_operator_token(Settings(data_dir=tmp_path).operator_token_path)
    headers = client._headers({"X-LDE-Staff": "S1042"})
    assert headers["Authorization"] == f"Bearer {token}" and headers[OS_USER_HEADER]
    # a caller's own Authorization (a personal token) is never replaced by the operator's
    assert client._headers({"Authorization": "Bearer lde_pat_x"}) == {"Authorization": "Bearer lde_pat_x"}

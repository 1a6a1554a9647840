"""`lde token issue|revoke|list`: personal API tokens for scripts and integrations (issue 15).

Through the running service (as the operator, with the data folder's token) or, with none running,
straight into ClickHouse. The token is printed once; LDE keeps only its SHA-256.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ops.cli.common import direct_store, fail, running_service
from ops.settings import Settings


def _show(row: dict[str, Any]) -> str:
    state = "revoked " + str(row["revoked_at"]) if row.get("revoked_at") else "active"
    expiry = f"expires {row['expires_at']}" if row.get("expires_at") else "no expiry"
    return f"{row['token_id']}  {row['staff_id']:<12} {state:<10} {expiry}  {row.get('label', '')}"


def cmd_token_issue(settings: Settings, args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    client = running_service(settings)
    if client is not None:
        query = urlencode({"staff": args.staff, "label": args.label or "", "days": args.days})
        answer = client.post(f"/v1/tokens/issue?{query}")
        if "error" in answer:
            return fail(str(answer["error"]))
    else:
        from ops.jobs.reports.weekly import load_directory
        from ops.staff.auth.api_tokens import ApiTokens

        store, _ = direct_store(settings)
        if args.staff not in load_directory(store):
            return fail(f"no staff member {args.staff!r} in the staff directory")
        row, token = ApiTokens(store, lambda: load_directory(store)).issue(
            args.staff, args.label or "", "operator", args.days or None
        )
        answer = {**row.public(), "token": token}
    print(_show(answer))
    print(f"token (shown once, keep it secret): {answer['token']}")
    return 0


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    client = running_service(settings)
    if client is not None:
        answer = client.post(f"/v1/tokens/{args.token_id}/revoke")
        if "error" in answer:
            return fail(str(answer["error"]))
    else:
        from ops.jobs.reports.weekly import load_directory
        from ops.staff.auth.api_tokens import ApiTokens, UnknownToken

        store, _ = direct_store(settings)
        try:
            answer = ApiTokens(store, lambda: load_directory(store)).revoke(args.token_id).public()
        except UnknownToken as error:
            return fail(str(error))
    print(_show(answer))
    return 0


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    client = running_service(settings)
    if client is not None:
        rows = client.get("/v1/tokens")
        if isinstance(rows, dict):
            return fail(str(rows.get("error")))
    else:
        from ops.jobs.reports.weekly import load_directory
        from ops.staff.auth.api_tokens import ApiTokens

        store, _ = direct_store(settings)
        rows = [r.public() for r in ApiTokens(store, lambda: load_directory(store)).list()]
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{len(rows)} API tokens")
        for row in rows:
            print("  " + _show(row))
    return 0

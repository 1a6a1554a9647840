"""`lde collector hash-secret`: the stored form of an upstream client's Basic secret (xAPI key:secret)."""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys

from ops.cli.common import fail
from ops.edge.basic_auth import hash_secret
from ops.settings import Settings


def cmd_collector_hash_secret(settings: Settings, args: argparse.Namespace) -> int:
    """Print the scrypt hash of a secret read from stdin (or a prompt), or of a new random secret
    (--generate, printed once), with the LDE_COLLECTOR_BASIC_CREDENTIALS entry to paste."""
    del settings
    if args.generate:
        secret = secrets.token_urlsafe(24)
        print(f"secret (give it to the client, it is not kept): {secret}", file=sys.stderr)
    elif sys.stdin.isatty():
        secret = getpass.getpass("secret: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        return fail("an empty secret cannot be used")
    stored = hash_secret(secret)
    print(json.dumps({args.source: {args.key: stored}}))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    collector = sub.add_parser("collector", help="the HTTP collector's credentials").add_subparsers(
        dest="action", required=True
    )
    p = collector.add_parser(
        "hash-secret",
        help="hash a Basic secret for LDE_COLLECTOR_BASIC_CREDENTIALS (secret on stdin, or --generate)",
    )
    p.add_argument("key", help="the key (user name) the client sends, e.g. moodle")
    p.add_argument("--source", default="xapi", help="the source whose endpoint it opens (default xapi)")
    p.add_argument("--generate", action="store_true", help="make a random secret and print it on stderr")
    p.set_defaults(func=cmd_collector_hash_secret)

"""The `lde` command. Every command reads the one Settings object (LDE_ environment variables)."""

from __future__ import annotations

from collections.abc import Sequence

from ops.cli.common import fail
from ops.cli.parser import build_parser
from ops.cli.reads import RefusedRead
from ops.settings import Settings
from sinks.errors import StackError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `lde` command and return its exit code: the command's own, 2 for bad settings or a
    stack that cannot be reached, the refusal's code for a refused read, 130 when interrupted."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as error:  # pydantic's message names the bad LDE_ variable
        return fail(f"invalid settings: {error}")
    try:
        return int(args.func(settings, args))
    except StackError as error:
        return fail(str(error))
    except RefusedRead as error:
        return fail(str(error), error.code)
    except KeyboardInterrupt:
        return 130

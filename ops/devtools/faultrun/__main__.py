"""`python -m ops.devtools.faultrun soak|dump`: the soak run (Makefile: soak), and one worker's ClickHouse
rows as JSON (the cluster reads each stopped worker's chDB in such a subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ops.devtools import faultrun
from ops.devtools.faultrun.cluster import dump
from ops.devtools.faultrun.soak import soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.devtools.faultrun", description=faultrun.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="print one worker's ClickHouse rows as JSON (one chDB per process)")
    d.add_argument("data_dir", type=Path)
    k = sub.add_parser("soak", help="steady load on one worker; RSS growth and max lag")
    k.add_argument("--minutes", type=float, default=float(os.environ.get("LDE_SOAK_MINUTES", "30")))
    k.add_argument("--rate", type=int, default=int(os.environ.get("LDE_SOAK_RATE", "2000")))
    k.add_argument("--work", type=Path, default=Path(".lde-soak"))
    args = parser.parse_args(argv)
    if args.command == "soak":
        shutil.rmtree(args.work, ignore_errors=True)
        figures = soak(args.work, args.minutes, args.rate)
        print(json.dumps(figures, indent=1))
        return 0
    if args.command == "dump":
        json.dump(dump(args.data_dir), sys.stdout)
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the recovery drills: `scripts/dr_drill.sh [--quick] [--only redis-lost,...] [--json FILE] [--markdown FILE]`.

Starts a PostgreSQL cluster and a redis-server of its own on free ports (never the machine's shared ones), the fake
Twilio, workers and a dispatcher; then, for each drill, sends a fresh set of SMS, breaks one thing mid-run and
counts what the provider received against the database. Prints one line per drill and exits 0 when every drill
lost nothing and sent nothing twice, 1 when one did (its logs are kept and named), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from . import report
from .drills import DRILLS, FULL, QUICK, DrillResult, DrillRun
from .servers import DrillError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/dr_drill.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small numbers and short timers (under a minute)")
    parser.add_argument("--only", default="", help=f"comma-separated drills, of: {', '.join(DRILLS)}")
    parser.add_argument("--messages", type=int, default=None, help="SMS per drill (default 5,000; 200 with --quick)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the report as markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data, the dump)")
    args = parser.parse_args(argv)
    args.drills = [name for name in args.only.split(",") if name] or list(DRILLS)
    unknown = [name for name in args.drills if name not in DRILLS]
    if unknown:
        parser.error(f"unknown drill {', '.join(unknown)}; the drills are {', '.join(DRILLS)}")
    if args.messages is not None and not 50 <= args.messages <= 100_000:
        parser.error("--messages must be between 50 and 100,000")
    if not 1 <= args.workers <= 16:
        parser.error("--workers must be between 1 and 16")
    return args


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.messages is not None:
        mode = replace(mode, messages=args.messages)
    results: list[DrillResult] = []
    try:
        with DrillRun(mode, workers=args.workers, keep=args.keep, progress=progress) as run:
            for name in args.drills:
                progress(f"… {name}: {mode.messages:,} SMS")
                started = time.monotonic()
                results.append(DRILLS[name](run))
                verdict = "ok" if results[-1].passed else "FAILED"
                progress(f"  {name}: {verdict} ({time.monotonic() - started:.0f} s)")
            if not all(result.passed for result in results):
                run.keep = True
            info = {
                "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                "mode": mode.name,
                "messages": mode.messages,
                "workers": args.workers,
                "latency_s": mode.latency,
                "postgres": run.postgres.version,
                "settings": run.settings,
                "directory": str(run.directory),
            }
    except DrillError as error:
        print(f"dr_drill: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dr_drill: interrupted; every process it started was stopped.", file=sys.stderr)
        return 130
    print(report.text(results, info), end="")
    if args.json:
        args.json.write_text(json.dumps(report.as_json(results, info), indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(report.markdown(results, info))
    failed = [result.name for result in results if not result.passed]
    if failed:
        print(f"dr_drill: {', '.join(failed)} failed; the processes' logs are in {info['directory']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

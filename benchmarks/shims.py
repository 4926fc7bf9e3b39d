#!/usr/bin/env python
"""What each shim (deliveries/shims/) gains end to end: the benchmark scenarios it touches, run with the shim off
and on, interleaved.

    BENCH_DB=tidings_bench_shims BENCH_REDIS_URL=redis://127.0.0.1:6379/13 BENCH_PORT_BASE=18400 \\
        .venv/bin/python benchmarks/shims.py [--rounds 2] [--only send_email,api]

For each group of scenarios (send_email: anymail; api and send_bulk: phonenumbers, drf) every round runs
each variant once: all shims on, then each of the group's shims off (TIDINGS_SHIMS_OFF in the environment of the
processes the scenario starts), in reverse order every other round (A B C, C B A...), so that a machine whose speed
drifts (other work on it) weighs on every variant alike. A shim's gain on a figure is the median over rounds of on
against off; it is kept if it gains 3 % or more end to end. The figures and gains go to
benchmarks/results/<date>-shims.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import Bench, scenario_api, scenario_fanout, scenario_send  # noqa: E402

# A shim is kept when it gains at least this much on its group's judged figure.
THRESHOLD = 0.03

# Group: (the scenario run, shims it touches, figures as (path, True if higher is better), the judged figure).
GROUPS = {
    "send_email": (
        lambda bench, size: scenario_send(bench, "email", size["send"]),
        ["anymail"],
        [("rate_per_s", True), ("workers_cpu_ms_per_message", False)],
    ),
    "api": (
        lambda bench, size: scenario_api(bench, size["api_seconds"]),
        ["phonenumbers", "drf"],
        [("single_accepted_per_s", True), ("batch_messages_per_s", True), ("offered_p99_ms", False)],
    ),
    "send_bulk": (
        lambda bench, size: scenario_fanout(bench, size["fanout"]),
        ["phonenumbers"],
        [("seconds_rows_written_and_queued", False), ("core_one_process.seconds_rows_written_and_queued", False)],
    ),
}


def figure(results: dict, path: str) -> float | None:
    value = results
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def gain(on: float, off: float, higher_is_better: bool) -> float:
    """How much better `on` is than `off`, as a fraction (0.05: 5 % better)."""
    return on / off - 1 if higher_is_better else off / on - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"postgres://postgres@127.0.0.1:5432/{os.environ.get('BENCH_DB')}")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated groups: " + ", ".join(GROUPS))
    parser.add_argument("--send", type=int, default=10000, help="messages per send_sms / send_email run")
    parser.add_argument("--fanout", type=int, default=50000, help="CSV rows per send_bulk run")
    parser.add_argument("--api-seconds", type=float, default=10)
    parser.add_argument("--out", default="", help="results file (default benchmarks/results/<date>-shims.json)")
    args = parser.parse_args()
    if not os.environ.get("BENCH_DB"):
        parser.error("set BENCH_DB, BENCH_REDIS_URL and BENCH_PORT_BASE: this run must not meet `make bench`'s")
    args.quick = False
    size = {"send": args.send, "fanout": args.fanout, "api_seconds": args.api_seconds}
    wanted = [name for name in (args.only.split(",") if args.only else GROUPS) if name]
    if unknown := [name for name in wanted if name not in GROUPS]:
        parser.error(f"unknown group {', '.join(unknown)}")
    bench = Bench(args)
    runs: dict[str, list[dict]] = {name: [] for name in wanted}
    try:
        bench.setup()
        for name in wanted:
            scenario, shims, _ = GROUPS[name]
            variants = ["", *shims]  # "": every shim on
            for round_number in range(1, args.rounds + 1):
                for off in variants if round_number % 2 else reversed(variants):
                    bench.env["TIDINGS_SHIMS_OFF"] = off
                    started = time.monotonic()
                    results = scenario(bench, size)
                    label = f"{off} off" if off else "all on"
                    print(f"{name} round {round_number} {label}: {time.monotonic() - started:.0f} s", file=sys.stderr)
                    runs[name].append({"round": round_number, "off": off, "results": results})
    finally:
        bench.env.pop("TIDINGS_SHIMS_OFF", None)
        bench.stop_all()
    report(runs, args)


def report(runs: dict[str, list[dict]], args) -> None:
    gains: dict[str, dict] = {}
    print(f"\n{'group':<11} {'shim off':<15} {'figure':<50} {'on':>10} {'off':>10} {'gain':>7}")
    for name, group_runs in runs.items():
        _, shims, figures = GROUPS[name]
        on_by_round = {run["round"]: run["results"] for run in group_runs if not run["off"]}
        for shim in shims:
            off_by_round = {run["round"]: run["results"] for run in group_runs if run["off"] == shim}
            for path, higher in figures:
                pairs = [
                    (figure(on_by_round[r], path), figure(off_by_round[r], path))
                    for r in sorted(off_by_round)
                    if figure(on_by_round[r], path) and figure(off_by_round[r], path)
                ]
                if not pairs:
                    continue
                by_round = [round(gain(on, off, higher), 4) for on, off in pairs]
                median = statistics.median(by_round)
                gains.setdefault(shim, {})[f"{name}.{path}"] = {
                    "on": [on for on, _ in pairs],
                    "off": [off for _, off in pairs],
                    "gain_by_round": by_round,
                    "median_gain": round(median, 4),
                }
                ons = statistics.median(on for on, _ in pairs)
                offs = statistics.median(off for _, off in pairs)
                print(f"{name:<11} {shim:<15} {path:<50} {ons:>10.3f} {offs:>10.3f} {median:>+7.1%}")
    record = {
        "date": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "note": "Shared machine, loaded by other work: variants interleaved (A B C, C B A) so drift weighs alike.",
        "latency_s": args.latency,
        "sizes": {"send": args.send, "fanout": args.fanout, "api_seconds": args.api_seconds},
        "rounds": args.rounds,
        "threshold": THRESHOLD,
        "gains": gains,
        "runs": runs,
    }
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-shims.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nWritten to {out}")


if __name__ == "__main__":
    main()

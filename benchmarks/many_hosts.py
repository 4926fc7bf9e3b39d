"""The `many_hosts` benchmark scenario (`benchmarks/run.py --only many_hosts`): SMS sent by workers on 1, 2 and 4
hosts of a `Cluster` (benchmarks/host_cluster.py), each rate, and what each message cost PostgreSQL and Redis."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.host_cluster import ROOT, Cluster, free_port

HOST_COUNTS = (1, 2, 4)


def rate_per_s(received_at: list[float]) -> float:
    """Messages per second between the first receipt and the last."""
    times = sorted(received_at)
    return round((len(times) - 1) / (times[-1] - times[0]), 1) if len(times) > 1 and times[-1] > times[0] else 0.0


# --- the benchmark scenario ----------------------------------------------------------------------
def scenario_many_hosts(bench, count: int) -> dict:
    """`count` SMS sent by workers on 1, 2 and 4 hosts in turn (one worker process per host; PostgreSQL, Redis and
    the fake Twilio reached over each host's own link): the rate for each, and what each message cost PostgreSQL
    (statements and round trips of the workers, WAL and storage) and Redis (commands, round trips). Also written to
    benchmarks/results/<date>-many_hosts.json (-quick with --quick)."""
    import requests
    from django.db import connection
    from django.test import override_settings

    figures: dict = {"messages_per_phase": count, "fake_latency_s": bench.args.latency, "phases": {}}
    with tempfile.TemporaryDirectory() as logs, Cluster(max(HOST_COUNTS), log_dir=Path(logs)) as cluster:
        figures["hosts_are"] = cluster.mode
        twilio_port = free_port()
        # A fake of this scenario's own, listening where the hosts reach it (the suite's listens on 127.0.0.1).
        addresses = [arg for address in cluster.service_addresses for arg in ("--host", address)]
        ports = ["--twilio-port", str(twilio_port), "--postmark-port", "0", "--messenger-port", "0"]
        fake = bench.spawn(sys.executable, "-m", "fake_providers", *addresses, *ports)
        fake_url = f"http://127.0.0.1:{twilio_port}"
        bench.wait_http(f"{fake_url}/_fake/config")
        queues = {name: {"URL": cluster.redis_url} for name in ("high", "default", "low")}
        with override_settings(RQ_QUEUES=queues):
            for hosts in HOST_COUNTS:
                bench.reset()
                requests.post(f"{fake_url}/_fake/reset", timeout=5).raise_for_status()
                config = {"latency": bench.args.latency, "outcome": "none"}
                requests.post(f"{fake_url}/_fake/config", json=config, timeout=5).raise_for_status()
                for host in cluster.hosts[:hosts]:
                    env = cluster.host_env(host, bench.env, database=connection.settings_dict, twilio_port=twilio_port)
                    cluster.start_worker(host, env)
                cluster.wait_for_workers(hosts)
                before = cluster.costs_snapshot()
                bench.create_messages(count)  # stored by COPY from here: not through the forwarder
                bench.wait_until_sent(count, timeout=max(120, count / 50))
                costs = cluster.costs_since(before, count)
                receipts = requests.get(f"{fake_url}/_fake/messages", timeout=60).json()["messages"]
                figures["phases"][f"{hosts}_hosts"] = {
                    "hosts": hosts,
                    "received_by_provider": len(receipts),
                    "rate_per_s": rate_per_s([r["received_at"] for r in receipts]),
                    **costs,
                }
                cluster.network.stop_all()
        bench.stop(fake)
    figures["counted"] = (
        "sql_*: the workers' statements and round trips (the messages are stored from the benchmark process, not "
        "counted); redis_*: every client's; wal and database bytes: storing and sending"
    )
    suffix = "-quick" if bench.args.quick else ""
    out = ROOT / "benchmarks" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-many_hosts{suffix}.json"
    out.write_text(json.dumps({"date": datetime.now(UTC).isoformat(), "many_hosts": figures}, indent=2) + "\n")
    return figures

"""A small HTTP load generator for the API scenario. Run as a separate process so the server under test and the
client do not share an interpreter. It prints one JSON line: requests, HTTP statuses, accepted messages per
second and latency percentiles.

    python benchmarks/loadgen.py URL API_KEY --seconds 30 --concurrency 32 [--batch 100]
    python benchmarks/loadgen.py URL API_KEY --seconds 30 --rate 400 [--concurrency 256]

Closed loop (the default): `--concurrency` requests in flight, each sent as soon as the previous one answered.
That finds the maximum rate, but its latency is mostly queueing: with N in flight, latency is N / throughput
whatever the server does, and a server that stalls also stops the clock for the requests it holds up.

Open loop (`--rate R`): request i is due at start + i / R whether or not earlier ones have answered (as wrk2
does), and its latency is measured from that due time, not from when it was actually sent, so time spent
waiting behind a slow request or for a free connection counts (coordinated omission is not hidden). A server
that cannot keep up at R builds an ever longer backlog and its p99 grows with the run: that is the answer.
`--concurrency` caps the open connections; a request due while all are busy waits for one, on the clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time

import aiohttp


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted list, in milliseconds."""
    if not ordered:
        return None
    return round(ordered[max(math.ceil(len(ordered) * fraction) - 1, 0)] * 1000, 1)


def payloads(batch_size: int):
    counter = iter(range(10**9))

    def single():
        return {"channel": "sms", "to": f"+1415{7000000 + next(counter) % 1000000}", "body": "Load test"}

    def batch():
        return {
            "defaults": {"channel": "sms", "body": "Load test"},
            "messages": [{"to": single()["to"]} for _ in range(batch_size)],
        }

    return batch if batch_size else single


async def closed_loop(session, url, payload, args) -> dict:
    latencies: list[float] = []
    outcomes: dict[int, int] = {}

    async def worker(deadline):
        while time.monotonic() < deadline:
            started = time.monotonic()
            async with session.post(url, json=payload()) as response:
                await response.read()
                outcomes[response.status] = outcomes.get(response.status, 0) + 1
            latencies.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(worker(started + args.seconds) for _ in range(args.concurrency)))
    return {"elapsed": time.monotonic() - started, "latencies": latencies, "outcomes": outcomes}


async def open_loop(session, url, payload, args) -> dict:
    latencies: list[float] = []  # from each request's due time
    service: list[float] = []  # from when it was actually sent: what a closed loop would report
    late: list[float] = []  # how far behind its due time this process got the request out
    outcomes: dict[int | str, int] = {}

    async def one(due: float, body: dict) -> None:
        sent = time.monotonic()
        late.append(sent - due)
        try:
            async with session.post(url, json=body) as response:
                await response.read()
                status: int | str = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            status = type(error).__name__
        finished = time.monotonic()
        outcomes[status] = outcomes.get(status, 0) + 1
        latencies.append(finished - due)
        service.append(finished - sent)

    total = int(args.rate * args.seconds)
    tasks = []
    started = time.monotonic()
    for i in range(total):
        due = started + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, payload())))
    await asyncio.gather(*tasks)
    late.sort()
    service.sort()
    return {
        "elapsed": args.seconds,  # the offered schedule's length: accepted/s is over the time requests were due
        "latencies": latencies,
        "outcomes": outcomes,
        "extra": {
            "offered_per_s": args.rate,
            "issued": total,
            "drain_s": round(time.monotonic() - started - args.seconds, 2),
            "service_p50_ms": percentile(service, 0.5),
            "service_p99_ms": percentile(service, 0.99),
            "issue_late_p99_ms": percentile(late, 0.99),
        },
    }


async def run(args) -> dict:
    url = args.url.rstrip("/") + ("/api/v1/messages/batch/" if args.batch else "/api/v1/messages/")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
        measure = open_loop if args.rate else closed_loop
        measured = await measure(session, url, payloads(args.batch), args)
    latencies = sorted(measured["latencies"])
    outcomes = measured["outcomes"]
    return {
        "mode": f"open loop at {args.rate}/s" if args.rate else f"closed loop, {args.concurrency} in flight",
        "requests": len(latencies),
        "statuses": outcomes,
        "accepted_messages_per_s": round(outcomes.get(201, 0) * (args.batch or 1) / measured["elapsed"], 1),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p99_ms": percentile(latencies, 0.99),
        "latency_max_ms": percentile(latencies, 1.0),
        **measured.get("extra", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("api_key")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=None, help="in flight (closed loop) or connection cap")
    parser.add_argument("--rate", type=float, default=0, help="open loop: requests per second, on a fixed schedule")
    parser.add_argument("--timeout", type=float, default=60, help="seconds before a request counts as failed")
    parser.add_argument("--batch", type=int, default=0, help="messages per request on the batch endpoint")
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = 256 if args.rate else 32
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()

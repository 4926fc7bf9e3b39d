"""A small HTTP load generator for the API scenario: POSTs for a fixed time at a fixed concurrency, then prints
one JSON line with the count of accepted requests and the latency percentiles. Run as a separate process so the
server under test and the client do not share an interpreter.

    python benchmarks/loadgen.py URL API_KEY --seconds 30 --concurrency 32 [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp


async def worker(session, url, payload, deadline, latencies, outcomes):
    while time.monotonic() < deadline:
        started = time.monotonic()
        async with session.post(url, json=payload()) as response:
            await response.read()
            outcomes[response.status] = outcomes.get(response.status, 0) + 1
        latencies.append(time.monotonic() - started)


async def run(args) -> dict:
    counter = iter(range(10**9))

    def single():
        return {"channel": "sms", "to": f"+1415{7000000 + next(counter) % 1000000}", "body": "Load test"}

    def batch():
        return {
            "defaults": {"channel": "sms", "body": "Load test"},
            "messages": [{"to": single()["to"]} for _ in range(args.batch)],
        }

    url = args.url.rstrip("/") + ("/api/v1/messages/batch/" if args.batch else "/api/v1/messages/")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    latencies: list[float] = []
    outcomes: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        started = time.monotonic()
        deadline = started + args.seconds
        await asyncio.gather(
            *(
                worker(session, url, batch if args.batch else single, deadline, latencies, outcomes)
                for _ in range(args.concurrency)
            )
        )
        elapsed = time.monotonic() - started
    latencies.sort()
    accepted_requests = outcomes.get(201, 0)
    per_request = args.batch or 1
    return {
        "requests": len(latencies),
        "statuses": outcomes,
        "accepted_messages_per_s": round(accepted_requests * per_request / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_p99_ms": round(latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000, 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("api_key")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=0, help="messages per request on the batch endpoint")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()

"""Runs the fake Twilio and Postmark servers until Ctrl-C: `python -m fake_providers [--latency 0.05]`."""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from .postmark import FakePostmark
from .server import wait_until_interrupted
from .twilio import FakeTwilio


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fake_providers", description=__doc__)
    parser.add_argument("--twilio-port", type=int, default=8101, help="0 picks a free port (default: 8101)")
    parser.add_argument("--postmark-port", type=int, default=8102, help="0 picks a free port (default: 8102)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each API answer takes (default: 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed for injected failures, for repeatable runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    twilio = FakeTwilio(latency=args.latency, seed=args.seed)
    postmark = FakePostmark(latency=args.latency, seed=args.seed)
    with ExitStack() as running:
        try:
            twilio_server = running.enter_context(twilio.start(args.twilio_port))
            postmark_server = running.enter_context(postmark.start(args.postmark_port))
        except OSError as error:
            raise SystemExit(f"fake_providers: {error}") from None
        print(
            f"Fake Twilio   {twilio_server.url}  TWILIO_API_BASE_URL={twilio_server.url} "
            f"TWILIO_ACCOUNT_SID={twilio.account_sid} TWILIO_AUTH_TOKEN={twilio.auth_token}",
            flush=True,
        )
        print(
            f"Fake Postmark {postmark_server.url}  POSTMARK_API_URL={postmark_server.url}/ "
            f"POSTMARK_SERVER_TOKEN={postmark.server_token}",
            flush=True,
        )
        wait_until_interrupted()


if __name__ == "__main__":
    main()

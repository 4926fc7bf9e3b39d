"""Runs the fake Twilio, Postmark and Messenger servers until Ctrl-C: `python -m fake_providers [--latency 0.05]`.

After accepting a message they call the application back (Twilio at each message's StatusCallback, Postmark and
Messenger at the webhook URLs under --app-url), so statuses move in the admin without any provider account.
Change outcomes while it runs, e.g.:
    curl -X POST localhost:8101/_fake/config -d '{"outcome": "undelivered", "error_code": 30006}'
    curl -X POST localhost:8102/_fake/config -d '{"outcome": "delivered", "opens": 2, "clicks": 1}'
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from .messenger import FakeMessenger
from .postmark import FakePostmark
from .server import wait_until_interrupted
from .twilio import FakeTwilio

# What the development settings expect (messaging_project/settings/development.py).
DEVELOPMENT_WEBHOOK_AUTH = "tidings:development-webhook-secret"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fake_providers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--twilio-port", type=int, default=8101, help="0 picks a free port (default: 8101)")
    parser.add_argument("--postmark-port", type=int, default=8102, help="0 picks a free port (default: 8102)")
    parser.add_argument("--messenger-port", type=int, default=8103, help="0 picks a free port (default: 8103)")
    parser.add_argument(
        "--host",
        action="append",
        default=None,
        help="address to listen on; repeat it for several (default: 127.0.0.1)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each API answer takes (default: 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed for injected failures, for repeatable runs")
    parser.add_argument(
        "--app-url",
        default="http://127.0.0.1:8000",
        help="where the application serves its webhooks (default: http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--webhook-auth",
        default=DEVELOPMENT_WEBHOOK_AUTH,
        help="user:password the fake Postmark sends its webhooks with (ANYMAIL_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--callback-delay", type=float, default=1.0, help="seconds before each callback (default: 1, to watch)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    app_url = args.app_url.rstrip("/")
    twilio = FakeTwilio(latency=args.latency, seed=args.seed, callback_delay=args.callback_delay)
    postmark = FakePostmark(
        latency=args.latency,
        seed=args.seed,
        webhook_url=f"{app_url}/webhooks/anymail/postmark/tracking/",
        webhook_auth=args.webhook_auth,
        opens=1,
        clicks=1,
        callback_delay=args.callback_delay,
    )
    messenger = FakeMessenger(
        latency=args.latency,
        seed=args.seed,
        webhook_url=f"{app_url}/webhooks/messenger/",
        outcome="read",
        callback_delay=args.callback_delay,
    )
    hosts = args.host or ["127.0.0.1"]
    with ExitStack() as running:
        try:
            twilio_server = running.enter_context(twilio.start(args.twilio_port, hosts))
            postmark_server = running.enter_context(postmark.start(args.postmark_port, hosts))
            messenger_server = running.enter_context(messenger.start(args.messenger_port, hosts))
        except OSError as error:
            raise SystemExit(f"fake_providers: {error}") from None
        print(
            f"Fake Twilio    {twilio_server.url}  TWILIO_API_BASE_URL={twilio_server.url} "
            f"TWILIO_ACCOUNT_SID={twilio.account_sid} TWILIO_AUTH_TOKEN={twilio.auth_token}",
            flush=True,
        )
        print(
            f"Fake Postmark  {postmark_server.url}  POSTMARK_API_URL={postmark_server.url}/ "
            f"POSTMARK_SERVER_TOKEN={postmark.server_token} ANYMAIL_WEBHOOK_SECRET={args.webhook_auth}",
            flush=True,
        )
        print(
            f"Fake Messenger {messenger_server.url}  MESSENGER_GRAPH_API_URL={messenger_server.url} "
            f"MESSENGER_PAGE_ACCESS_TOKEN={messenger.access_token} MESSENGER_APP_SECRET={messenger.app_secret}",
            flush=True,
        )
        print(f"Callbacks go to {app_url} after {args.callback_delay}s.", flush=True)
        wait_until_interrupted()


if __name__ == "__main__":
    main()

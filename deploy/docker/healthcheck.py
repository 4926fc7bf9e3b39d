"""Asks a Tidings web process whether it is healthy; exit 0 if so, 1 with one line saying why not.

    python deploy/docker/healthcheck.py                      the image's HEALTHCHECK: /health/live of this container
    python deploy/docker/healthcheck.py --ready --url http://tidings-web:8000 --wait 300
                                                             the deploy gate: /health/ready, retried until it passes

Standard library only: the runtime image has no curl. It asks for the host `localhost`, which ALLOWED_HOSTS keeps
beside the public name, since Django answers 400 to a host it does not serve and a probe is no client of that name.
With HEALTH_TOKEN in the environment, a failing /health/ready says which checks fail (README "Health").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request

ATTEMPT_TIMEOUT_SECONDS = 4.0
RETRY_EVERY_SECONDS = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="healthcheck.py", description=__doc__.splitlines()[0])
    parser.add_argument("--ready", action="store_true", help="ask /health/ready instead of /health/live")
    parser.add_argument(
        "--url",
        default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
        help="the web process's base URL (default: this container's, on $PORT)",
    )
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep trying before giving up (default: 0)")
    return parser.parse_args(argv)


def ask(url: str) -> str | None:
    """None when `url` answers 200, otherwise what went wrong, in a few words."""
    headers = {"Host": "localhost"}
    if os.environ.get("HEALTH_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['HEALTH_TOKEN']}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (main() admits http and https only)
    try:
        with urllib.request.urlopen(request, timeout=ATTEMPT_TIMEOUT_SECONDS) as response:  # noqa: S310
            return None if response.status == 200 else f"answered {response.status}"
    except urllib.error.HTTPError as error:
        if error.code == 400:
            return "answered 400: is localhost in ALLOWED_HOSTS?"
        return f"answered {error.code} {error.read(2000).decode(errors='replace').strip()}"
    except (OSError, ValueError) as error:
        return f"did not answer ({error})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        print(f"--url must be an http:// or https:// address, not {args.url!r}.", file=sys.stderr)
        return 2
    url = args.url.rstrip("/") + ("/health/ready" if args.ready else "/health/live")
    give_up_at = time.monotonic() + args.wait
    while True:
        problem = ask(url)
        if problem is None:
            return 0
        if time.monotonic() + RETRY_EVERY_SECONDS > give_up_at:
            waited = f" after {args.wait:g} s" if args.wait else ""
            print(f"{url} {problem}{waited}; see docs/deployment.md, 'When a check fails'.", file=sys.stderr)
            return 1
        time.sleep(RETRY_EVERY_SECONDS)


if __name__ == "__main__":
    sys.exit(main())

import argparse
import logging

from django.core.management.base import BaseCommand, CommandError

from console.services.smoke import Outcome, SmokeTargetError, smoke_target_parse, smoke_test_run


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"give seconds between 0 and 3600, not {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "After a deploy: check the database, every Redis connection, a worker and the dispatcher, each provider's "
        "credentials (with calls that send nothing) and the webhooks at PUBLIC_BASE_URL; with --to, send a real "
        "test message to each target and wait for its receipt. One line per check; exits 1 if any failed."
    )
    # Our own checks say what is wrong, one line each; Django's (Redis reachable…) would stop us before they run.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--to",
            action="append",
            default=[],
            metavar="NUMBER_OR_ADDRESS",
            help="send a test message: +14155550100 (SMS), whatsapp:+14155550100, messenger:<PSID>, "
            "ada@example.com (email); repeat for several",
        )
        parser.add_argument(
            "--timeout",
            type=seconds,
            default=60.0,
            help="seconds to wait for the test messages' receipts (default 60)",
        )

    def handle(self, *args, **options):
        try:
            targets = [smoke_target_parse(value) for value in options["to"]]
        except SmokeTargetError as error:
            raise CommandError(str(error)) from None
        if options["verbosity"] >= 3:  # the traceback of a check that failed unexpectedly
            logging.getLogger("console.services.smoke").setLevel(logging.DEBUG)
        try:
            results = smoke_test_run(
                targets=targets,
                timeout=options["timeout"],
                report=lambda result: self.stdout.write(result.line()),
                progress=lambda text: self.stdout.write(text),
            )
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted. Test messages already queued still go out: find them in the admin's message list."
            ) from None
        failed = [result.name for result in results if result.outcome == Outcome.FAIL]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}.")
        skipped = sum(result.outcome == Outcome.SKIP for result in results)
        self.stdout.write(f"All {len(results) - skipped} checks passed ({skipped} not checked).")

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from campaigns.services.bulk_sends import BulkSendError, bulk_send_csv
from deliveries.models import AuditEntry, Batch
from deliveries.services.audit import audit_record, command_actor


class Command(BaseCommand):
    help = (
        "Send one message per row of a CSV file. The first line names the columns: 'to' is the recipient, "
        "every other column is template context. Running the same file again (same --key, by default the "
        "file's content hash) sends nobody twice: rows already stored are skipped. A new --key sends again. "
        "A 'purpose' column marks one-time codes ('otp', with --category transactional)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, metavar="FILE", help="Path to the CSV file.")
        parser.add_argument("--template", default="", help="Slug of the template to send.")
        parser.add_argument("--channel", choices=["sms", "email"], default="", help="Without a template: channel.")
        parser.add_argument("--body", default="", help="Without a template: the body ({{ column }} for a value).")
        parser.add_argument("--subject", default="", help="Without a template: an email's subject.")
        parser.add_argument(
            "--category", choices=["marketing", "transactional"], default="", help="Every row's (default marketing)."
        )
        parser.add_argument("--at", default="", help="Send at this time (ISO 8601; server time zone if none).")
        parser.add_argument("--key", default="", help="Name of this send (default: the file's SHA-256).")
        parser.add_argument("--dry-run", action="store_true", help="Check and count every row, store nothing.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (it only shows on a terminal).")
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.BULK_SEND_PROCESSES,
            metavar="N",
            help="Processes checking and storing rows (PostgreSQL; default BULK_SEND_PROCESSES, the CPUs here).",
        )

    def handle(
        self,
        *args,
        csv,
        template,
        channel,
        body,
        subject,
        category,
        at,
        key,
        dry_run,
        no_progress,
        processes,
        **options,
    ):
        if bool(template) == bool(channel or body):
            raise CommandError("Give either --template SLUG, or --channel and --body (and --subject for email).")
        send_at = None
        if at:
            send_at = parse_datetime(at)
            if send_at is None:
                raise CommandError(f"--at '{at}' is not an ISO 8601 time, like 2030-01-01T09:00:00+01:00.")
            if timezone.is_naive(send_at):
                send_at = timezone.make_aware(send_at)
        if processes < 1:
            raise CommandError(f"--processes {processes}: give 1 or more.")
        # disable=None shows the bar on a terminal only, so logs and cron mail stay clean.
        bar = tqdm(unit="row", desc="Dry run" if dry_run else "Sending", disable=True if no_progress else None)
        try:
            report = bulk_send_csv(
                path=csv,
                template=template,
                channel=channel,
                body=body,
                subject=subject,
                category=category,
                send_at=send_at,
                key=key,
                dry_run=dry_run,
                on_start=lambda total: bar.reset(total=total),
                on_rows=bar.update,
                processes=processes,
            )
        except BulkSendError as error:
            raise CommandError(f"{csv}: {error}") from error
        finally:
            bar.close()
        if report.accepted and report.batch_id is not None:
            audit_record(
                action=AuditEntry.Action.BATCH_CREATED,
                target=Batch.objects.get(pk=report.batch_id),
                actor=command_actor("send_bulk"),
                details={"file": csv, "accepted": report.accepted, "rejected": len(report.rejected)},
            )
        for row in report.rejected:
            self.stdout.write(f"Line {row.line}: {row.reason}")
        for row in report.held:
            self.stdout.write(f"Line {row.line}: {row.reason}")
        prefix = "Dry run, nothing stored. " if dry_run else ""
        self.stdout.write(f"{prefix}{csv} (key {report.key}): {report.summary()}")
        if report.rejected:
            raise CommandError(
                f"{len(report.rejected)} row(s) rejected. The other rows were {'checked' if dry_run else 'stored'}; "
                "put the corrected rows in a new file to send them."
            )

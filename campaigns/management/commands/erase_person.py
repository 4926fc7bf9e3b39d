from django.core.management.base import BaseCommand, CommandError

from campaigns.services.person_erasure import PersonErasureInputError, person_erase
from deliveries.models import AuditEntry
from deliveries.services.audit import audit_record, command_actor
from messaging_project.log_redaction import mask_recipient

LABELS = {
    "messages": "messages anonymised",
    "messages_cancelled": "of them cancelled before sending",
    "events": "timeline events blanked",
    "inbound_messages": "messages from them blanked",
    "suppressions_hashed": "suppression entries kept as a hash",
    "receipts": "pending provider receipts blanked",
    "audit_entries": "audit entries blanked where they quoted them",
    "batches": "API batch answers blanked",
    "idempotency_keys": "idempotency keys blanked",
    "admin_history": "admin history entries blanked",
    "archive_tallies": "archived failure examples blanked where they quoted them",
    "archive_files": "archive files the dispatchers search and rewrite without them",
    "contacts": "contacts deleted",
    "list_memberships": "list memberships deleted",
    "segments": "segment filters blanked",
}


class Command(BaseCommand):
    help = (
        "Erase a person's data (a GDPR erasure request), found by phone number or email address: their messages "
        "anonymised, their replies blanked, their contacts deleted, an opt-out kept only as a keyed hash, and an "
        "audit entry without their address. The dispatchers rewrite the archive files without them in the background; "
        "a restore of an older copy blanks them again (docs/security.md)."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--phone", help="The person's phone number (E.164, or national with PHONE_DEFAULT_REGION).")
        who.add_argument("--email", help="The person's email address (any case).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be erased; change nothing.")

    def handle(self, *args, phone, email, dry_run, **options):
        try:
            erasure = person_erase(phone=phone, email=email, dry_run=dry_run)
        except PersonErasureInputError as error:
            raise CommandError(f"{error} Nothing was erased.") from None
        # Masked: a terminal's scrollback, a CI log or a ticket the output is pasted into must not undo the erasure.
        who = ", ".join(mask_recipient(address) for address in erasure.phones + erasure.emails)
        counts = erasure.counts.as_dict()
        in_flight = counts.pop("messages_in_flight")
        self.stdout.write(f"{'Dry run, nothing changed. Would erase' if dry_run else 'Erased'}: {who}")
        for name, count in counts.items():
            self.stdout.write(f"  {count:>8}  {LABELS[name]}")
        if not dry_run:
            audit_record(
                action=AuditEntry.Action.PERSON_ERASED,
                actor=command_actor("erase_person"),
                details=erasure.audit_details(),
            )
        if in_flight:
            raise CommandError(
                f"{in_flight} message(s) to them are being sent right now and were left: run the same command again "
                "in a minute to erase them too."
            )

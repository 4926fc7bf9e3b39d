from django.core.management.base import BaseCommand, CommandError

from deliveries.services.holds import held_messages_release_all


class Command(BaseCommand):
    help = (
        "Queue again the messages the cost guard held (a spend cap, a velocity limit): those held with --code, or "
        "--all of them. A released message is not held again by the spend caps (docs/guard.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--code", help="Only the messages held with this code: held:cap, held:velocity:…")
        parser.add_argument("--all", action="store_true", help="Every held message, whatever held it.")

    def handle(self, *args, code, all, **options):
        if bool(code) == bool(all):
            raise CommandError("Say which held messages to release: --code CODE (such as held:cap) or --all.")
        try:
            released = held_messages_release_all(code=code, by="release_held (command)")
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Released {released} held message(s).")

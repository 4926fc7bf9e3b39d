from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from deliveries.models import ApiKey, ApiScope, AuditEntry
from deliveries.services.api_keys import (
    ApiKeyInvalid,
    api_key_countries_validate,
    api_key_create,
    api_key_rate_validate,
    api_key_scopes_validate,
    api_key_sender_validate,
)
from deliveries.services.audit import audit_record, command_actor

SCOPES = ", ".join(ApiScope.values)


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Command(BaseCommand):
    help = "Create an API key and print it once. Only its hash is stored: copy it now."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what the key is for, e.g. 'billing-service'.")
        parser.add_argument(
            "--scopes",
            type=_comma_list,
            help=f"What the key may do, comma-separated: {SCOPES}. Without it the key can do everything.",
        )
        parser.add_argument("--expires-in", type=int, metavar="DAYS", help="Refuse the key after this many days.")
        parser.add_argument("--rate", default="", help="Requests allowed, like 100/second or 10/second;1000/hour.")
        parser.add_argument(
            "--senders",
            type=_comma_list,
            default=[],
            help="Comma-separated senders the key may set (numbers, MG… SIDs, sender ids, email addresses); "
            "without it, any.",
        )

        parser.add_argument(
            "--countries",
            type=_comma_list,
            default=[],
            help="Comma-separated ISO codes (GB,US) of the countries the key may send SMS and WhatsApp to, within "
            "SMS_ALLOWED_COUNTRIES and WHATSAPP_ALLOWED_COUNTRIES; without it, those.",
        )

    def handle(self, *args, name, scopes, expires_in, rate, senders, countries, **options):
        # The options first: a mistyped scope is reported the same with or without a database.
        try:
            scopes = api_key_scopes_validate(scopes) if scopes is not None else None
            rate = api_key_rate_validate(rate)
            senders = [api_key_sender_validate(sender) for sender in senders]
            countries = api_key_countries_validate(countries)
        except ApiKeyInvalid as error:
            raise CommandError(str(error)) from error
        if expires_in is not None and expires_in < 1:
            raise CommandError("--expires-in is a number of days, 1 or more.")
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(
                f"An API key named '{name}' already exists; pick another name or revoke it in the admin."
            )
        expires_at = timezone.now() + timedelta(days=expires_in) if expires_in is not None else None
        try:
            api_key, raw_key = api_key_create(
                name=name,
                scopes=scopes,
                expires_at=expires_at,
                rate=rate,
                allowed_senders=senders,
                allowed_countries=countries,
            )
        except ApiKeyInvalid as error:
            raise CommandError(str(error)) from error
        audit_record(action=AuditEntry.Action.KEY_CREATED, target=api_key, actor=command_actor("create_api_key"))
        if scopes is None:
            self.stderr.write(
                f"API key '{api_key.name}' has full access (the admin scope). "
                f"Give it only what it needs with --scopes, from: {SCOPES}."
            )
        else:
            self.stderr.write(f"API key '{api_key.name}' may: {', '.join(api_key.scopes)}.")
        if countries:
            self.stderr.write(f"It may send SMS and WhatsApp to: {', '.join(countries)}.")
        if expires_at is not None:
            self.stderr.write(f"It expires on {expires_at:%Y-%m-%d %H:%M %Z}.")
        self.stderr.write(f"Created API key '{api_key.name}'. It is shown only this once:")
        self.stdout.write(raw_key)

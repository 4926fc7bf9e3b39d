from django.core.management.base import BaseCommand, CommandError

from deliveries.models import ApiKey
from deliveries.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it once. Only its hash is stored: copy it now."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what the key is for, e.g. 'billing-service'.")

    def handle(self, *args, name, **options):
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(
                f"An API key named '{name}' already exists; pick another name or revoke it in the admin."
            )
        api_key, raw_key = api_key_create(name=name)
        self.stderr.write(f"Created API key '{api_key.name}'. It is shown only this once:")
        self.stdout.write(raw_key)

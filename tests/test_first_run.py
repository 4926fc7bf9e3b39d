"""`make run`'s first run: the development superuser gets an address the fake Postmark accepts, so the summary email
of its first campaign does not fail (and show as failures on the dashboard), and `make superuser` mends an admin
made before with the old address."""

import shlex
import subprocess

import pytest
from django.contrib.auth.models import User

from fake_providers.postmark import PostmarkError, validate_message
from tests.support import ROOT


def superuser_commands() -> list[list[str]]:
    """The shell commands `make superuser` runs after migrating, as argument lists (make -n prints, runs nothing)."""
    printed = subprocess.run(
        ["make", "-n", "--no-print-directory", "superuser"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [shlex.split(line) for line in printed.replace("\\\n\t", "").splitlines() if "manage.py" in line]


def summary_email_to(address: str) -> dict:
    return {"From": "tidings@example.com", "To": address, "Subject": "Campaign finished", "TextBody": "Done"}


def test_the_development_superusers_address_is_one_the_fake_postmark_accepts():
    [create] = [command for command in superuser_commands() if "createsuperuser" in command]
    [address] = [part.split("=", 1)[1] for part in create if part.startswith("DJANGO_SUPERUSER_EMAIL=")]
    assert validate_message(summary_email_to(address)) == {"To": [address], "Cc": [], "Bcc": []}
    with pytest.raises(PostmarkError):  # the address it replaces
        validate_message(summary_email_to("admin@localhost"))


@pytest.mark.django_db
def test_make_superuser_gives_an_admin_made_with_the_old_address_the_new_one():
    [shell] = [command for command in superuser_commands() if "shell" in command]
    code = shell[shell.index("-c") + 1]
    admin = User.objects.create_superuser("admin", email="admin@localhost", password="admin")
    other = User.objects.create_user("ada", email="admin@localhost")  # not the development admin: left alone
    # The Makefile's own line of Python, run here against the test database rather than the development one.
    exec(code, {})  # noqa: S102
    admin.refresh_from_db()
    other.refresh_from_db()
    assert (admin.email, other.email) == ("admin@example.com", "admin@localhost")
    exec(code, {})  # noqa: S102  (a second run changes nothing)
    admin.refresh_from_db()
    assert admin.email == "admin@example.com"

"""Attack 6 of issue 20: password guessing on /admin/login/, through the real login form (django-axes)."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True)


def log_in(client, username, password, address="203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_25_wrong_passwords_then_the_right_one_does_not_log_in(client, operator):
    for attempt in range(25):
        log_in(client, "ops", f"guess-{attempt}")
    response = log_in(client, "ops", PASSWORD)
    assert response.status_code == 429
    assert "Account locked" in response.content.decode()
    assert not logged_in(client)


def test_below_the_limit_the_right_password_still_logs_in(client, operator, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "ops", f"guess-{attempt}").status_code == 200  # the form again, with its error
    response = log_in(client, "ops", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_a_username_is_locked_out_whichever_address_the_guesses_come_from(client, operator, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "ops", f"guess-{attempt}", address=f"198.51.100.{attempt}")
    assert log_in(client, "ops", PASSWORD, address="192.0.2.200").status_code == 429
    assert not logged_in(client)


def test_an_address_is_locked_out_whichever_usernames_it_tries(client, operator, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"user{attempt}", "password123", address="203.0.113.99")
    assert log_in(client, "ops", PASSWORD, address="203.0.113.99").status_code == 429
    assert not logged_in(client)
    # The same user from another address is not punished for that address's guesses.
    assert log_in(client, "ops", PASSWORD, address="192.0.2.10").status_code == 302


def test_a_superuser_unlocks_a_locked_out_user_in_the_admin(client, operator, settings, admin_client):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "ops", f"guess-{attempt}")
    assert log_in(client, "ops", PASSWORD).status_code == 429

    changelist = admin_client.get("/admin/axes/accessattempt/")
    assert changelist.status_code == 200
    assert "ops" in changelist.content.decode()
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    unlocked = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert unlocked.status_code == 302
    assert not AccessAttempt.objects.exists()

    assert log_in(client, "ops", PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_lockout_does_not_touch_api_requests_from_that_address(client, operator, settings, api):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "ops", f"guess-{attempt}", address="127.0.0.1")
    assert log_in(client, "ops", PASSWORD, address="127.0.0.1").status_code == 429
    assert api.get("/api/v1/messages/", REMOTE_ADDR="127.0.0.1").status_code == 200

"""API keys remembered in the shared cache (django-redis), found by every process, and for a second in the process
itself; forgotten by the process that revokes, changes or deletes a key at once, by every other within that second."""

import socket
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from freezegun import freeze_time

from deliveries.models import ApiKey
from deliveries.services.api_keys import (
    API_KEY_LOCAL_SECONDS,
    INVALIDATED,
    _cache_key,
    _local_keys,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
)
from tests.support import process_env, start_manage, stop, wait_for


def _entry(api_key: ApiKey):
    return cache.get(_cache_key(api_key.key_hash))


@pytest.mark.django_db
def test_a_valid_key_is_found_in_the_shared_cache_without_a_query():
    api_key, raw = api_key_create(name="cached", scopes=["messages:read"])
    assert api_key_authenticate(raw).pk == api_key.pk
    assert isinstance(_entry(api_key), ApiKey)
    _local_keys.clear()  # as another process, which has not seen the key yet
    with CaptureQueriesContext(connection) as queries:
        found = api_key_authenticate(raw)
    assert found.pk == api_key.pk and found.scopes == ["messages:read"]
    assert len(queries) == 0


@pytest.mark.django_db
def test_a_process_trusts_a_key_it_found_for_a_second_without_asking_redis():
    api_key, raw = api_key_create(name="local", scopes=["messages:read"])
    assert api_key_authenticate(raw).pk == api_key.pk
    cache.delete(_cache_key(api_key.key_hash))
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(raw).pk == api_key.pk
    assert len(queries) == 0
    assert _entry(api_key) is None  # answered from the process: Redis was not asked, so nothing was put back
    with freeze_time(timezone.now() + timedelta(seconds=API_KEY_LOCAL_SECONDS + 1)):
        assert api_key_authenticate(raw).pk == api_key.pk  # the second is up: Redis, then the database
    assert isinstance(_entry(api_key), ApiKey)


@pytest.mark.django_db
def test_a_revoked_key_is_refused_at_once_although_it_was_cached():
    api_key, raw = api_key_create(name="revoked")
    assert api_key_authenticate(raw) is not None
    api_key_revoke(api_key=api_key)
    assert _entry(api_key) == INVALIDATED
    assert api_key_authenticate(raw) is None


@pytest.mark.django_db
def test_a_lookup_that_read_the_row_before_the_revocation_cannot_cache_it_again():
    api_key, raw = api_key_create(name="raced")
    # Another process read the row (still active) and is about to cache it when the key is revoked.
    stale = ApiKey.objects.get(pk=api_key.pk)
    api_key_revoke(api_key=api_key)
    cache.add(_cache_key(api_key.key_hash), stale, timeout=30)  # what that process's lookup does next
    assert _entry(api_key) == INVALIDATED
    assert api_key_authenticate(raw) is None


@pytest.mark.django_db
def test_a_cached_key_is_refused_once_it_expires():
    expires_at = timezone.now() + timedelta(hours=1)
    api_key, raw = api_key_create(name="expiring", expires_at=expires_at)
    assert api_key_authenticate(raw) is not None
    assert isinstance(_entry(api_key), ApiKey)
    with freeze_time(expires_at + timedelta(seconds=1)):
        assert api_key_authenticate(raw) is None


@pytest.mark.django_db
def test_a_key_changed_or_deleted_elsewhere_is_looked_up_afresh():
    api_key, raw = api_key_create(name="edited", scopes=["messages:read"])
    api_key_authenticate(raw)
    api_key.scopes = ["messages:send"]
    api_key.save()
    assert api_key_authenticate(raw).scopes == ["messages:send"]
    api_key.delete()
    assert api_key_authenticate(raw) is None


@pytest.mark.django_db
def test_keys_are_checked_against_the_database_while_redis_does_not_answer(settings):
    api_key, raw = api_key_create(name="no-redis")
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    assert api_key_authenticate(raw).pk == api_key.pk
    api_key_revoke(api_key=api_key)  # logs that it could not invalidate; the database still decides
    assert api_key_authenticate(raw) is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, raw_key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {raw_key}"})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_web_process_that_served_a_key_refuses_it_once_another_process_revokes_it():
    api_key, raw = api_key_create(name="two-processes", scopes=["messages:read"])
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/v1/messages/"
    web = start_manage("runserver", f"127.0.0.1:{port}", "--noreload", env=process_env())
    try:
        wait_for(lambda: _get(url, raw) == 200, timeout=30, message="the web process to serve the key")
        assert _get(url, raw) == 200
        assert isinstance(_entry(api_key), ApiKey)  # the web process cached it where this process sees it
        api_key_revoke(api_key=api_key)  # in this process, as the admin would
        # The web process trusts what it found for API_KEY_LOCAL_SECONDS, then sees the invalidation.
        wait_for(lambda: _get(url, raw) == 401, timeout=10, message="the web process to refuse the revoked key")
        assert _get(url, raw) == 401
    finally:
        output = stop(web)
    assert "Traceback" not in output, output

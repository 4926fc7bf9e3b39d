"""The admin's Content-Security-Policy (messaging_project/content_security.py): no inline script anywhere in the
admin, so content that slipped past escaping still could not run."""

import base64
import hashlib
import re
from pathlib import Path

import django_rq
import pytest

from messaging_project.content_security import DJANGO_RQ_SCRIPT_HASH

ROOT = Path(__file__).parents[1]
# A script element the policy would refuse to run: no src, and not a data block (json_script's application/json).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", re.S)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def policy_of(response) -> dict[str, list[str]]:
    directives = (part.strip().split() for part in response["Content-Security-Policy"].split(";") if part.strip())
    return {name: values for name, *values in directives}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/deliveries/message/",
        "/admin/deliveries/message/compose/",
        "/admin/content/messagetemplate/add/",
    ],
)
def test_admin_pages_allow_scripts_from_our_own_static_files_only(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert not INLINE_SCRIPT.search(response.content.decode()), "an inline script would be refused by the policy"


@pytest.mark.django_db
def test_the_login_page_has_the_policy_and_the_api_does_not_pay_for_it(client, api):
    assert policy_of(client.get("/admin/login/"))["default-src"] == ["'self'"]
    assert "Content-Security-Policy" not in api.get("/api/v1/messages/")


def test_our_admin_templates_have_no_inline_script_or_event_handler():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not INLINE_SCRIPT.search(text), template
        assert not EVENT_HANDLER.search(text), template


def test_the_queue_pages_inline_script_is_the_one_whose_hash_the_policy_allows():
    # If a django-rq upgrade changes its script, this fails rather than the queue pages.
    folder = Path(django_rq.__file__).parent / "templates/django_rq"
    scripts = {body for page in folder.glob("*.html") for body in INLINE_SCRIPT.findall(page.read_text())}
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'" for body in scripts}
    assert hashes == {DJANGO_RQ_SCRIPT_HASH}


@pytest.mark.django_db
def test_the_queue_pages_allow_that_one_inline_script(admin_client):
    response = admin_client.get("/admin/queues/queues/0/")
    assert response.status_code == 200
    assert policy_of(response)["script-src"] == ["'self'", DJANGO_RQ_SCRIPT_HASH]

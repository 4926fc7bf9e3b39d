"""The SQL stays in deliveries/db: no other module of the apps branches on the database or reaches into the ORM's
internals, and the timeline is written by deliveries/db/events.py alone."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
APPS = ("deliveries", "campaigns", "content")
DB_PACKAGE = ROOT / "deliveries" / "db"

RULES = {
    "a branch on the database": (re.compile(r"\.vendor\b"), DB_PACKAGE),
    "the ORM's internals": (
        re.compile(r"django\.db\.models\.sql|\.query\.|get_compiler|\.from_db\(|\._state\.|connection\.connection"),
        DB_PACKAGE,
    ),
    "a timeline write": (
        re.compile(r"MessageEvent\.objects\.(create|bulk_create)|[^ ]MessageEvent\(|rows_insert\(\s*MessageEvent"),
        DB_PACKAGE / "events.py",
    ),
}


def app_modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


@pytest.mark.parametrize("rule", RULES)
def test_only_its_own_place_in_deliveries_db_does_it(rule):
    pattern, allowed = RULES[rule]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in app_modules()
        if not path.is_relative_to(allowed)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not found, f"{rule} outside {allowed.relative_to(ROOT)}:\n" + "\n".join(found)

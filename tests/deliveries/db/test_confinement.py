"""The SQL stays in deliveries/db: no other module of the apps branches on the database or reaches into the ORM's
internals, and the timeline is written by deliveries/db/events.py alone."""

import ast
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


def imported_modules(path):
    """The modules a file imports, anywhere in it (function-level imports too), relative ones made absolute."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = f"{base}.{node.module}" if base and node.module else (node.module or base)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


@pytest.mark.parametrize(
    ("layer", "below"),
    [
        (ROOT / "deliveries" / "state.py", ("deliveries.services", "campaigns")),
        (DB_PACKAGE, ("deliveries.state", "deliveries.services", "campaigns")),
    ],
)
def test_the_state_machine_and_its_sql_import_nothing_above_them(layer, below):
    paths = sorted(layer.rglob("*.py")) if layer.is_dir() else [layer]
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in paths
        for module in imported_modules(path)
        if module.startswith(below)
    ]
    assert not found, "\n".join(found)

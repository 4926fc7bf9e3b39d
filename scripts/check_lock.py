"""Fail when a lock file no longer matches the requirements it was compiled from (`make lock` forgotten).

Each `name==version` pinned in requirements.txt / requirements-dev.txt must stand in its lock file with the same
version. One line per mismatch, then the command that fixes it.
"""

import re
import sys
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;#\\]+)", re.MULTILINE)


def pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    found = {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}
    for included in re.findall(r"^-r\s+(\S+)", text, re.MULTILINE):
        found.update(pins(path.parent / included))
    return found


def main() -> int:
    problems = []
    for name in ("requirements", "requirements-dev"):
        wanted, locked = pins(Path(f"{name}.txt")), pins(Path(f"{name}.lock"))
        for package, version in sorted(wanted.items()):
            if locked.get(package) != version:
                has = locked.get(package, "(missing)")
                problems.append(f"{name}.lock has {package}=={has}, {name}.txt pins {version}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("The lock files are out of date: run `make lock` and commit them.", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

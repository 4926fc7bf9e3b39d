#!/usr/bin/env bash
# pip-audit over every locked dependency (requirements-dev.lock includes the runtime's). Fails on any known
# vulnerability. pip-audit asks PyPI's JSON API (https://pypi.org/pypi/<name>/<version>/json) for each package; where
# the network does not let it through, every package comes back "skipped": that is said loudly and plainly, as an
# audit that did not happen, not as a clean one.
set -uo pipefail
py="${PYTHON:-.venv/bin/python}"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
.venv/bin/pip-audit --requirement requirements-dev.lock --disable-pip --no-deps --progress-spinner off \
  --format json --output "$report" 2>/dev/null
status=$?
"$py" - "$report" "$status" <<'PY'
import json, sys
path, status = sys.argv[1], int(sys.argv[2])
try:
    dependencies = json.load(open(path))["dependencies"]
except (OSError, ValueError, KeyError):
    print(f"pip-audit did not run (exit {status}); run `.venv/bin/pip-audit -r requirements-dev.lock --disable-pip --no-deps` to see why.")
    sys.exit(1)
vulnerable = [d for d in dependencies if d.get("vulns")]
skipped = [d for d in dependencies if "skip_reason" in d]
audited = len(dependencies) - len(skipped)
for dependency in vulnerable:
    for vuln in dependency["vulns"]:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
        print(f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixed})")
if vulnerable:
    print("Upgrade the packages above in requirements*.txt, then `make lock`.")
    sys.exit(1)
if skipped and not audited:
    print(f"pip-audit: NOT AUDITED: all {len(skipped)} locked packages were skipped ({skipped[0]['skip_reason']}). "
          "The vulnerability service is unreachable from this network; run `make audit` where PyPI's JSON API answers.")
    sys.exit(0)
print(f"pip-audit: {audited} locked packages audited, no known vulnerability"
      + (f"; {len(skipped)} skipped: " + ", ".join(d["name"] for d in skipped) if skipped else "."))
PY

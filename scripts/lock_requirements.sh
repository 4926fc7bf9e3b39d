#!/usr/bin/env bash
# Compile the lock files from the pinned requirements: every transitive dependency, pinned, with its hashes
# (`make install` installs with --require-hashes, so a changed or substituted file refuses to install).
# Run after editing requirements.txt or requirements-dev.txt: `make lock`.
set -euo pipefail
uv="${UV:-.venv/bin/uv}"
for name in requirements requirements-dev; do
  "$uv" pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    --custom-compile-command "make lock" "$name.txt" -o "$name.lock"
done

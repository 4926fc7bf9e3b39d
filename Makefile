# Tidings: `make run` to try it, `make test` to check it. Everything installs into .venv/.
BOOT_PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PYTHON := $(BIN)/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
DEV_ENV := DJANGO_SETTINGS_MODULE=messaging_project.settings.development

.PHONY: browser hosts redis-servers install run test test-both test-sqlite test-postgres test-postgres-in-process lint migrate superuser redis clean bench bench-quick lock audit drill

install: $(VENV)/.installed

# Installs the lock file: every transitive dependency pinned, each file checked against its hash.
$(VENV)/.installed: requirements-dev.lock scripts/fetch_static_vendor.sh
	@test -x $(BIN)/python || $(BOOT_PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	scripts/fetch_static_vendor.sh
	@touch $@

# After editing requirements.txt or requirements-dev.txt: compile both lock files again, with hashes.
lock:
	@test -x $(BIN)/uv || { test -x $(BIN)/python || $(BOOT_PYTHON) -m venv $(VENV); $(BIN)/pip install --quiet uv==0.13.8; }
	scripts/lock_requirements.sh

# Known vulnerabilities in the locked dependencies (pip-audit); CI runs it after the tests.
audit: install
	scripts/audit_dependencies.sh

# Headless Chromium and chromedriver for the browser tests (Debian packages; skipped when already there).
browser:
	@scripts/install_browser.sh

# iproute2, with which the many-hosts test makes network namespaces (without it, the test runs process groups).
hosts:
	@scripts/install_iproute2.sh

# redis-server (master, replica, sentinels, TLS) and openssl for tests/redis_ha/ (Debian packages; skipped when there).
redis-servers:
	@scripts/install_redis_servers.sh

redis: install
	@scripts/ensure_redis.sh

migrate: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput --skip-checks

# Development superuser: admin / admin (DEBUG only; never run this against production). Its address must be one
# the fake Postmark accepts (a domain with a dot), or the owner's campaign summary email fails; an admin made
# before with admin@localhost gets the new address.
DEV_ADMIN_EMAIL := admin@example.com
superuser: migrate
	@$(DEV_ENV) DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_PASSWORD=admin DJANGO_SUPERUSER_EMAIL=$(DEV_ADMIN_EMAIL) \
		$(BIN)/python manage.py createsuperuser --noinput --skip-checks >/dev/null 2>&1 || true
	@$(DEV_ENV) $(BIN)/python manage.py shell -v 0 -c "from django.contrib.auth.models import User; \
		User.objects.filter(username='admin', email='admin@localhost').update(email='$(DEV_ADMIN_EMAIL)')"
	@echo "Admin: http://127.0.0.1:8000/admin/  (user admin, password admin, email $(DEV_ADMIN_EMAIL))"

# Every process keeps its metrics in .run/metrics (prometheus_client's multiprocess mode), emptied at each start:
# files of processes from an earlier run would be added to this one's. See docs/metrics.md.
run: redis superuser
	rm -rf .run/metrics && mkdir -p .run/metrics
	$(DEV_ENV) PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/.run/metrics $(BIN)/honcho -f Procfile.dev start

lint: install
	$(BIN)/python scripts/check_lock.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy analytics campaigns console content deliveries guard messaging_project
	DJANGO_SETTINGS_MODULE=messaging_project.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

# The API fuzzing (tests/test_api_fuzzing.py) runs its full bound against PostgreSQL, the production database and the
# stricter one (NUL bytes, integer ranges); on SQLite its schema examples and boundary cases, and 30 random requests
# an operation instead of 150: the same cases twice cost CI minutes and found nothing more. Tests of what is not the
# database (marked browser or db_neutral: Redis failover, provider faults, pages in Chromium) run against PostgreSQL
# only; `pytest` by hand on SQLite still runs them.
SQLITE_PYTEST := env -u DATABASE_URL FUZZ_MAX_EXAMPLES=30 $(BIN)/pytest -q
test-sqlite: install redis redis-servers
	$(SQLITE_PYTEST) -m "not browser and not db_neutral"

# Its own Redis database, so that it may run beside the SQLite suite (which uses TEST_REDIS_URL, else 15).
TEST_POSTGRES_REDIS_URL ?= redis://127.0.0.1:6379/12
POSTGRES_PYTEST := DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_POSTGRES_REDIS_URL) $(BIN)/pytest -q
test-postgres: install redis browser hosts redis-servers
	$(POSTGRES_PYTEST)

# `make test` on both databases, in two lanes side by side, each mostly on a core of its own: the whole SQLite pass,
# and the PostgreSQL tests that run within pytest's own process (no worker, dispatcher or browser started: marked
# neither slow, browser nor db_neutral), which take about as long. Then the PostgreSQL tests that start processes
# or a browser, alone: the heaviest (four worker hosts, a Redis failover, Chromium) beside anything else starve
# each other's processes on two cores and time out.
IN_PROCESS := not slow and not browser and not db_neutral
test-both: install redis browser hosts redis-servers
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres-in-process
	$(POSTGRES_PYTEST) -m "slow or browser or db_neutral"

test-postgres-in-process:
	$(POSTGRES_PYTEST) -m "$(IN_PROCESS)"

# The whole suite on SQLite and on PostgreSQL (required in CI; without it, the SQLite pass alone and a note).
test: lint
	@if DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -c "import environ,psycopg; c=environ.Env.db_url_config('$(TEST_DATABASE_URL)'); psycopg.connect(host=c['HOST'], port=c['PORT'] or 5432, user=c['USER'], dbname=c['NAME'], connect_timeout=3).close()" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-both; \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(TEST_DATABASE_URL); CI needs it." >&2; exit 1; \
	else $(MAKE) --no-print-directory test-sqlite && echo "Skipped the PostgreSQL run: nothing answers at $(TEST_DATABASE_URL). The browser and db_neutral tests ran in neither pass: start PostgreSQL, or run them on SQLite with: $(BIN)/pytest -m 'browser or db_neutral'"; fi

clean:
	rm -rf $(VENV) .run db.sqlite3 test-db.sqlite3

# Benchmarks against PostgreSQL on this machine (see docs/performance.md). `make bench-quick` for a smoke run.
bench: redis
	$(BIN)/python benchmarks/run.py

bench-quick: redis
	$(BIN)/python benchmarks/run.py --quick

# Recovery drills (Redis lost, PostgreSQL restarted, dump and restore, provider down, worker killed) on a PostgreSQL
# cluster and a Redis of their own; about 7 minutes (docs/operations.md#backups-and-drills). `--quick`: under one.
drill: install
	scripts/dr_drill.sh

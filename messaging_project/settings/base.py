"""Settings shared by every environment, read from the environment with django-environ.

Every variable is listed once in README.md ("Configuration") with its default.
https://docs.djangoproject.com/en/5.2/ref/settings/
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from messaging_project import log_context as _log_context
from messaging_project.redis_connections import RedisConfig

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

# --- Core -----------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off: set it in the environment.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 (DEBUG only)

# Old keys still accepted when checking signatures (sessions, unsubscribe links) while SECRET_KEY is rotated:
# put the old key here, the new one in SECRET_KEY, and drop the old one once its sessions and links may go.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# The key of the hashes an erased person's suppression entries are kept as (docs/security.md, "Erasing a person").
# It must never change: an entry hashed with a key no longer listed here stops matching, and that person's opt-out
# silently stops holding. Empty: derived from SECRET_KEY (development only; production requires it). A key once
# used moves to the fallbacks, never away.
SUPPRESSION_HASH_KEY = env("SUPPRESSION_HASH_KEY", default="")
SUPPRESSION_HASH_KEY_FALLBACKS = env.list("SUPPRESSION_HASH_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public URL the outside world reaches us at: status callback and unsubscribe URLs are built from it, and
# Twilio's webhook signatures are checked against it (README "Webhooks").
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "anymail",
    "import_export",
    "axes",
    "csp",
    # Ours, bottom to top: each imports only those above it in this list (tests/test_architecture.py).
    "content",
    "guard",
    "deliveries",
    "analytics",
    "campaigns",
    "console",
]

MIDDLEWARE = [
    # First: a body over MAX_REQUEST_BYTES is refused before anything reads it (DRF's parsers bypass Django's cap).
    "messaging_project.request_limits.RequestBodyLimitMiddleware",
    # Every log line of a request carries its id (X-Request-ID, given or made), and so does the response.
    "messaging_project.log_context.RequestLogContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "messaging_project.content_security.BrowserPagesCSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy of the admin and the unsubscribe page (messaging_project/content_security.py; django-csp 4
# format). Scripts only from our own static files; styles may be inline (Django's admin, django-rq's pages and
# ours set style attributes, and a style cannot run script); images from here only, so an email previewed in
# the admin loads no tracking pixel; no frames of this site anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "messaging_project.urls"
WSGI_APPLICATION = "messaging_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite when DATABASE_URL is unset ------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets web, worker and dispatcher processes read while one writes; wait instead of failing on a lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # A transaction takes the write lock when it begins (waiting up to `timeout`), instead of failing at
            # once with "database is locked" when it first writes after reading while another process writes.
            "transaction_mode": "IMMEDIATE",
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, knowing the protocol's 65,535 parameters a statement (messaging_project/postgresql).
    DATABASES["default"]["ENGINE"] = "messaging_project.postgresql"
if DATABASES["default"]["ENGINE"] == "messaging_project.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # Parameters sent apart from the statement, and a statement run five times prepared on its connection: the
    # worker's claims and records are the same few statements thousands of times a second, and PostgreSQL parsed
    # and planned each afresh (a fifth of its CPU per message, docs/performance.md). Off for a connection pooler
    # that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Login protection (django-axes): https://django-axes.readthedocs.io/en/latest/4_configuration.html ----------
# The admin's password login only: the API authenticates with API keys, which never reach these backends.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first, so a locked-out login is refused before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT failed logins lock out that username (from any address) and, apart, that address (for any
# username), for LOGIN_LOCKOUT_MINUTES: a guesser is stopped whether it tries many passwords for one user or one
# password for many users. A superuser unlocks earlier by deleting the attempt in the admin ("Access attempts"),
# or `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS` / `axes_reset`.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The address a login comes from: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost one
# put in X-Forwarded-For (a client can write anything into that header, so it is only read when told to).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "messaging_project.client_address.client_ip_address"
AXES_ALLOWED_CORS_ORIGINS = PUBLIC_BASE_URL
# No banner in every process's output at start-up (commands promise one readable line); lockouts still log a warning.
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Browser libraries fetched by `make install` (scripts/fetch_static_vendor.sh), served as static "vendor/...".
STATICFILES_DIRS = [("vendor", BASE_DIR / "static_vendor")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


# --- Redis: transport for jobs, never the source of truth ---------------------------------------
# Plain, TLS (rediss://) or Sentinel: every connection is configured by messaging_project.redis_connections.
# With Sentinel, REDIS_URL gives only the master's credentials and db (and rediss:// for TLS), not its address.
def _with_connect_timeout(url: str, seconds: int = 3) -> str:
    """Give Redis connections a connect timeout so a dead Redis fails fast instead of hanging."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_connect_timeout", str(seconds))
    return urlunsplit(parts._replace(query=urlencode(query)))


REDIS_URL = _with_connect_timeout(env("REDIS_URL", default="redis://127.0.0.1:6379/0"))
REDIS_SENTINELS = env("REDIS_SENTINELS", default="")  # host:port,host:port
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="")
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD", default="")
REDIS_SSL_CA_CERTS = env("REDIS_SSL_CA_CERTS", default="")
REDIS_SSL_CERTFILE = env("REDIS_SSL_CERTFILE", default="")
REDIS_SSL_KEYFILE = env("REDIS_SSL_KEYFILE", default="")
_redis = RedisConfig(
    url=REDIS_URL,
    sentinels=REDIS_SENTINELS,
    sentinel_master=REDIS_SENTINEL_MASTER,
    sentinel_password=REDIS_SENTINEL_PASSWORD,
    ssl_ca_certs=REDIS_SSL_CA_CERTS,
    ssl_certfile=REDIS_SSL_CERTFILE,
    ssl_keyfile=REDIS_SSL_KEYFILE,
)

CACHES = {"default": _redis.cache()}

# Queues by priority; workers listen to them in this order.
RQ_QUEUES = {
    name: _redis.rq_queue(DEFAULT_TIMEOUT=env.int("RQ_JOB_TIMEOUT", default=300)) for name in ("high", "default", "low")
}
# We call transaction.on_commit ourselves in the services, so enqueue means enqueue.
RQ = {"COMMIT_MODE": "auto"}
RQ_SHOW_ADMIN_LINK = False  # the dashboard is superuser-only; see messaging_project/urls.py

# --- Delivery pipeline ----------------------------------------------------------------------------
SMS_BACKEND = env("SMS_BACKEND", default="console")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_TIMEOUT = env.float("TWILIO_TIMEOUT", default=10.0)
# WhatsApp through the same Twilio account: a WhatsApp-enabled sender, or a Messaging Service that has one.
WHATSAPP_BACKEND = env("WHATSAPP_BACKEND", default="console")
TWILIO_WHATSAPP_FROM = env("TWILIO_WHATSAPP_FROM", default="")
TWILIO_WHATSAPP_MESSAGING_SERVICE_SID = env("TWILIO_WHATSAPP_MESSAGING_SERVICE_SID", default="")
# What to answer a HELP / INFO reply with; empty leaves it to Twilio's own default answer.
INBOUND_HELP_REPLY = env("INBOUND_HELP_REPLY", default="")

# Facebook Messenger through Meta's Send API (Graph API).
# https://developers.facebook.com/docs/messenger-platform/reference/send-api/
MESSENGER_BACKEND = env("MESSENGER_BACKEND", default="console")
MESSENGER_PAGE_ACCESS_TOKEN = env("MESSENGER_PAGE_ACCESS_TOKEN", default="")
MESSENGER_APP_SECRET = env("MESSENGER_APP_SECRET", default="")
MESSENGER_VERIFY_TOKEN = env("MESSENGER_VERIFY_TOKEN", default="")
MESSENGER_GRAPH_API_URL = env("MESSENGER_GRAPH_API_URL", default="https://graph.facebook.com").rstrip("/")
MESSENGER_GRAPH_API_VERSION = env("MESSENGER_GRAPH_API_VERSION", default="v19.0")
MESSENGER_MESSAGING_TYPE = env("MESSENGER_MESSAGING_TYPE", default="UPDATE")
MESSENGER_MESSAGE_TAG = env("MESSENGER_MESSAGE_TAG", default="")
MESSENGER_TIMEOUT = env.float("MESSENGER_TIMEOUT", default=10.0)

# Messages per job, and concurrent provider calls inside one job (also the most calls in doubt if a worker dies:
# docs/reliability.md). Backends without an async client (SMTP, Messenger) run their calls on at most SEND_THREADS
# threads; Twilio and anymail's HTTP backends keep theirs on libcurl from the job's own thread.
SEND_BATCH_SIZE = env.int("SEND_BATCH_SIZE", default=1000)
# send_bulk's processes checking, rendering and storing rows (PostgreSQL): one per CPU this process may use.
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
BULK_SEND_PROCESSES = env.int("BULK_SEND_PROCESSES", default=_CPUS)
# A campaign's fan-out (without a rate limit) likewise, in the worker's job (PostgreSQL).
FAN_OUT_PROCESSES = env.int("FAN_OUT_PROCESSES", default=_CPUS)
SEND_CONCURRENCY = env.int("SEND_CONCURRENCY", default=100)
SEND_THREADS = env.int("SEND_THREADS", default=64)
# A running send job takes over the send jobs waiting behind it in its queue for this many seconds (none while a
# higher priority's jobs wait), so a worker's call slots stay full from one batch to the next instead of draining
# and forking a new work horse per job. Keep it well under RQ_JOB_TIMEOUT (`manage.py check` says so); 0: none
# after a small job's first fill up to SEND_BATCH_SIZE.
SEND_JOB_TAKE_OVER_SECONDS = env.float("SEND_JOB_TAKE_OVER_SECONDS", default=30.0)
# --- Reliability: retries, deadlines, leases, rate limits, circuit breakers (docs/reliability.md) ----------
# Attempts per message before a transient error becomes a failure; per channel, falling back to SEND_MAX_ATTEMPTS.
SEND_MAX_ATTEMPTS = env.int("SEND_MAX_ATTEMPTS", default=5)
SMS_MAX_ATTEMPTS = env.int("SMS_MAX_ATTEMPTS", default=None)
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=None)
# Exponential backoff: the first delay in seconds, doubled each attempt up to the cap; SEND_RETRY_JITTER is the
# share of each delay drawn at random (0.5: between half and all of it), so retries of a burst spread out.
SEND_RETRY_BACKOFF = env.float("SEND_RETRY_BACKOFF", default=5.0)
SEND_RETRY_BACKOFF_MAX = env.float("SEND_RETRY_BACKOFF_MAX", default=3600.0)
SEND_RETRY_JITTER = env.float("SEND_RETRY_JITTER", default=0.5)
# Default "too late" cutoff in seconds after the send time, per channel (empty: none). A message can also carry
# its own `expires_at` / `valid_for`. Past it, a message fails instead of going out late.
SMS_VALID_FOR = env.int("SMS_VALID_FOR", default=None)
EMAIL_VALID_FOR = env.int("EMAIL_VALID_FOR", default=None)
# How long a message may stay `sending` (one provider call, from just before it starts) before the reconciler
# decides the worker died. Must be well above the provider timeouts (TWILIO_TIMEOUT).
SEND_LEASE_SECONDS = env.float("SEND_LEASE_SECONDS", default=60.0)
# A send job that loses its database connection (a PostgreSQL restart or failover) tries its writes again for this
# long, so that the answers of its calls in flight are written and it goes on (deliveries/sending/database_loss.py).
# With the slowest provider call, it must stay within SEND_LEASE_SECONDS (check tidings.W002).
SEND_DATABASE_WAIT_SECONDS = env.float("SEND_DATABASE_WAIT_SECONDS", default=20.0)
# Channels where a possible duplicate is harmless: a message whose worker died mid-call is sent again instead
# of waiting in `review` for a person.
RESEND_AMBIGUOUS_CHANNELS = env.list("RESEND_AMBIGUOUS_CHANNELS", default=[])
# Send rates, enforced across every worker through Redis (https://limits.readthedocs.io/en/stable/quickstart.html
# #rate-limit-string-notation): "30/second", "14/second;50000/day". Per provider and per sender. Empty: no limit.
SMS_RATE_LIMIT = env("SMS_RATE_LIMIT", default="")
SMS_SENDER_RATE_LIMIT = env("SMS_SENDER_RATE_LIMIT", default="")
EMAIL_RATE_LIMIT = env("EMAIL_RATE_LIMIT", default="")
EMAIL_SENDER_RATE_LIMIT = env("EMAIL_SENDER_RATE_LIMIT", default="")
# Circuit breaker per provider, shared through Redis: after BREAKER_FAIL_MAX consecutive transient failures the
# provider is paused for BREAKER_RESET_TIMEOUT seconds, then one probe decides whether it is back.
BREAKER_FAIL_MAX = env.int("BREAKER_FAIL_MAX", default=5)
BREAKER_RESET_TIMEOUT = env.float("BREAKER_RESET_TIMEOUT", default=30.0)
# How often the dispatcher looks for due messages, and how long a queued message may wait for a job
# before the reconciler re-queues it.
DISPATCH_INTERVAL = env.float("DISPATCH_INTERVAL", default=0.2)
RECONCILE_AFTER = env.int("RECONCILE_AFTER", default=30)
# Scheduled messages due within DISPATCH_LOOKAHEAD seconds are claimed ahead of time, so that a burst due in the same
# second is ready when it is due; their jobs go to Redis DISPATCH_PUSH_LEAD seconds before that and wait out the
# rest in the worker. Never sent before send_at. Keep the lookahead well under RECONCILE_AFTER.
DISPATCH_LOOKAHEAD = env.float("DISPATCH_LOOKAHEAD", default=2.0)
DISPATCH_PUSH_LEAD = env.float("DISPATCH_PUSH_LEAD", default=0.1)
# How long an Idempotency-Key replays its request's result. Older keys are forgotten by the reconciler (the
# messages stay), and the same key then creates afresh, as Stripe's do after 24 hours.
IDEMPOTENCY_KEY_TTL_HOURS = env.float("IDEMPOTENCY_KEY_TTL_HOURS", default=24.0)
# How long the audit trail (staff, API key and command actions) is kept; the reconciler deletes older entries.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
# How often each dispatcher runs the campaign scheduler (recurring occurrences, starts, completions).
CAMPAIGN_TICK_INTERVAL = env.float("CAMPAIGN_TICK_INTERVAL", default=1.0)
# Seconds a completed campaign's owner summary waits at most for the last delivery receipts (it goes as soon as
# every sent message has one); the campaign page stays live until then.
CAMPAIGN_SUMMARY_SETTLE = env.float("CAMPAIGN_SUMMARY_SETTLE", default=600.0)
# Analytics (docs/analytics.md): how often each dispatcher counts new timeline events into the rollups (seconds);
# how long an event id missing below the rollup's watermark is looked for before it counts as rolled back
# (seconds); how long the per-minute rollup is kept (hours).
ANALYTICS_ROLLUP_INTERVAL = env.float("ANALYTICS_ROLLUP_INTERVAL", default=5.0)
ANALYTICS_GAP_MAX_AGE = env.float("ANALYTICS_GAP_MAX_AGE", default=600.0)
ANALYTICS_MINUTE_RETENTION_HOURS = env.float("ANALYTICS_MINUTE_RETENTION_HOURS", default=48.0)
# Alerts (console/services/alerts.py, README "Alerts"): checked every ALERT_CHECK_INTERVAL seconds by each dispatcher
# and by `manage.py check_alerts`; each fires once when it starts and once when it clears, by email to ADMINS
# (comma-separated addresses) and/or as Slack-compatible JSON to ALERT_WEBHOOK_URL.
ADMINS = [(address, address) for address in env.list("ADMINS", default=[])]
ALERT_WEBHOOK_URL = env("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_TIMEOUT = env.float("ALERT_WEBHOOK_TIMEOUT", default=5.0)
ALERT_CHECK_INTERVAL = env.float("ALERT_CHECK_INTERVAL", default=30.0)
# Failed and undelivered over the last 5 minutes' sends, once there were at least ALERT_FAILURE_MIN_SENDS of them.
ALERT_FAILURE_RATE = env.float("ALERT_FAILURE_RATE", default=0.2)
ALERT_FAILURE_MIN_SENDS = env.int("ALERT_FAILURE_MIN_SENDS", default=20)
ALERT_OLDEST_WAITING_MINUTES = env.float("ALERT_OLDEST_WAITING_MINUTES", default=10.0)
# Redis memory used as a share of its maxmemory (no alert while Redis has no limit).
ALERT_REDIS_MEMORY = env.float("ALERT_REDIS_MEMORY", default=0.8)
# Webhook requests refused for their signature in the last 5 minutes.
ALERT_WEBHOOK_SIGNATURE_FAILURES = env.int("ALERT_WEBHOOK_SIGNATURE_FAILURES", default=20)
# A firing alert clears only after firing this long: a figure hovering at its threshold sends one pair at most
# this often, not one every check.
ALERT_CLEAR_AFTER_SECONDS = env.float("ALERT_CLEAR_AFTER_SECONDS", default=120.0)
EMAIL_SUBJECT_PREFIX = "[Tidings] "
# Archiving (docs/operations.md, "Archiving and retention"): with ARCHIVE_AFTER_DAYS (at least 7; 0, the default,
# is off) the dispatchers archive finished messages older than that many days once a day, to gzip JSON Lines files
# in ARCHIVE_DIR, a slice every ARCHIVE_TICK_INTERVAL seconds until the day's pass is done.
ARCHIVE_AFTER_DAYS = env.int("ARCHIVE_AFTER_DAYS", default=0)
ARCHIVE_DIR = env("ARCHIVE_DIR", default=str(BASE_DIR / "archive"))
ARCHIVE_TICK_INTERVAL = 10.0
# Providers' actual prices (docs/guard.md, "Actual prices"): each minute one dispatcher asks Twilio for the price of
# up to ACTUAL_PRICE_FETCH_PER_MINUTE sent SMS and WhatsApp messages (0 turns it off; keep it well under the account's
# API rate limit, which sending shares), once they were sent ACTUAL_PRICE_FETCH_AFTER_MINUTES ago (Twilio fills the
# price in after delivery) and until they are ACTUAL_PRICE_FETCH_MAX_DAYS old.
ACTUAL_PRICE_FETCH_PER_MINUTE = env.int("ACTUAL_PRICE_FETCH_PER_MINUTE", default=60)
ACTUAL_PRICE_FETCH_AFTER_MINUTES = env.float("ACTUAL_PRICE_FETCH_AFTER_MINUTES", default=10.0)
ACTUAL_PRICE_FETCH_MAX_DAYS = env.float("ACTUAL_PRICE_FETCH_MAX_DAYS", default=3.0)
# What the dispatcher runs besides handing out due messages, in this order: (dotted path of a function taking no
# arguments, seconds between runs). Each runs on the first pass. The reconciler runs three times per
# RECONCILE_AFTER, and at most once a second.
DISPATCHER_PERIODIC_TASKS = [
    ("campaigns.services.campaign_scheduler.campaigns_tick", CAMPAIGN_TICK_INTERVAL),
    ("deliveries.services.reconciler.reconcile", max(RECONCILE_AFTER / 3, 1.0)),
    # 0 takes the rollups off the dispatchers, for `manage.py rollup_analytics --every N` run on its own.
    *([("analytics.services.rollup.rollup_tick", ANALYTICS_ROLLUP_INTERVAL)] if ANALYTICS_ROLLUP_INTERVAL > 0 else []),
    ("console.services.alerts.alerts_check", ALERT_CHECK_INTERVAL),
    *([("deliveries.services.archive.archive_tick", ARCHIVE_TICK_INTERVAL)] if ARCHIVE_AFTER_DAYS else []),
    # Whether or not they archive: files `archive_messages` wrote on this host are erased in too.
    ("deliveries.services.archive_erasure.archive_erasure_tick", ARCHIVE_TICK_INTERVAL),
    *([("deliveries.services.actual_prices.price_tick", 60.0)] if ACTUAL_PRICE_FETCH_PER_MINUTE > 0 else []),
]
# Each dispatcher stamps a heartbeat in Redis this often (seconds); readiness and alerts call a dispatcher whose
# last beat is older than DISPATCHER_HEARTBEAT_MAX_AGE dead.
DISPATCHER_HEARTBEAT_EVERY = env.float("DISPATCHER_HEARTBEAT_EVERY", default=5.0)
DISPATCHER_HEARTBEAT_MAX_AGE = env.float("DISPATCHER_HEARTBEAT_MAX_AGE", default=60.0)
# RQ's worker TTL for run_worker (RQ's own default is 420): a worker killed without a word (SIGKILL, a host gone)
# stays listed by RQ, and so on the dashboard, the smoke test and /health/ready, for this plus 60 seconds. An idle
# worker wakes every TTL - 15 seconds to renew it: one Redis call, nothing more.
WORKER_TTL = env.int("WORKER_TTL", default=60)
# The console: the dashboard's "Now" figures and the queue monitor's are kept in the shared cache this many seconds
# (one build per few seconds whoever watches); the monitor's "retry these" / "cancel these" act on this many
# messages per request, a big group in several steps with progress shown.
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=5)
QUEUE_MONITOR_ACTION_BATCH = env.int("QUEUE_MONITOR_ACTION_BATCH", default=500)
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default=None)

# --- Cost guard (docs/guard.md) -------------------------------------------------------------------
# Each process keeps the price list this many seconds between reads, so that an estimate costs no query; a price
# saved in the admin or by `import_prices` applies in that process at once, in the others within this time.
PRICE_CACHE_SECONDS = env.float("PRICE_CACHE_SECONDS", default=10.0)
# The same for the spend caps (a cap saved applies at once in that process, in workers within this time).
SPEND_CAP_CACHE_SECONDS = env.float("SPEND_CAP_CACHE_SECONDS", default=10.0)
# A spend counter Redis lost is recounted from messages sent in its window and created at most this many days
# before it (a message scheduled further ahead is not in the recount).
SPEND_RECOUNT_LOOKBACK_DAYS = env.int("SPEND_RECOUNT_LOOKBACK_DAYS", default=7)
# Destination allowlists (geo permissions): the countries (ISO 3166-1 alpha-2 codes, comma separated) SMS (and MMS)
# and WhatsApp may be sent to; empty, every country. A message elsewhere is refused at creation; an API key's own
# list can only narrow these. An unknown code stops the start (check tidings.E070).
SMS_ALLOWED_COUNTRIES = [code.strip().upper() for code in env.list("SMS_ALLOWED_COUNTRIES", default=[]) if code.strip()]
WHATSAPP_ALLOWED_COUNTRIES = [
    code.strip().upper() for code in env.list("WHATSAPP_ALLOWED_COUNTRIES", default=[]) if code.strip()
]
# Velocity limits per hour at creation (docs/guard.md, "Velocity limits and one-time codes"); 0 turns one off. Every
# message: off by default. One-time codes (purpose "otp"): on, strict enough to stop SMS pumping in its first minute.
RECIPIENT_HOURLY_LIMIT = env.int("RECIPIENT_HOURLY_LIMIT", default=0)
OTP_RECIPIENT_HOURLY_LIMIT = env.int("OTP_RECIPIENT_HOURLY_LIMIT", default=5)
# A number's range: its first digits after the +. 7 is a carrier's block (+1 NPA-NXX, +44 7700 9) in most plans.
VELOCITY_PREFIX_DIGITS = env.int("VELOCITY_PREFIX_DIGITS", default=7)
PREFIX_DISTINCT_PER_HOUR = env.int("PREFIX_DISTINCT_PER_HOUR", default=0)
OTP_PREFIX_DISTINCT_PER_HOUR = env.int("OTP_PREFIX_DISTINCT_PER_HOUR", default=20)
KEY_HOURLY_LIMIT = env.int("KEY_HOURLY_LIMIT", default=0)
OTP_KEY_HOURLY_LIMIT = env.int("OTP_KEY_HOURLY_LIMIT", default=1000)
# Quiet hours of single messages, in the recipient's local time, like "21:00-08:00" (empty: off): a message due
# inside them is scheduled for their end. Marketing messages keep QUIET_HOURS; transactional ones (one-time codes)
# are wanted at once, so they keep only QUIET_HOURS_TRANSACTIONAL. Campaigns have their own quiet hours.
QUIET_HOURS = env("QUIET_HOURS", default="")
QUIET_HOURS_TRANSACTIONAL = env("QUIET_HOURS_TRANSACTIONAL", default="")
# The zone of recipients whose own is not known (email, Messenger, a number phonenumbers cannot place); empty:
# TIME_ZONE.
QUIET_HOURS_DEFAULT_TIMEZONE = env("QUIET_HOURS_DEFAULT_TIMEZONE", default="")

# --- Email: Django's EMAIL_BACKEND (anymail in production) --------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# SMTP's timeout (seconds; Django has none by default): an alert notice is held by one dispatcher for two minutes
# (console/services/alert_notices.py), so a hung mail server must give up well before another takes it over.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Tidings <tidings@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL = {
    "POSTMARK_SERVER_TOKEN": env("POSTMARK_SERVER_TOKEN", default=""),
    # A list, so a new user:password can be accepted alongside the old one while the ESP is switched over.
    "WEBHOOK_SECRET": env.list("ANYMAIL_WEBHOOK_SECRET", default=[]),
}
if env("POSTMARK_API_URL", default=""):
    ANYMAIL["POSTMARK_API_URL"] = env("POSTMARK_API_URL")

# --- Contact imports (django-import-export): https://django-import-export.readthedocs.io/en/latest/installation.html
# Importing contacts in the admin takes the permission to add contacts.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_USE_TRANSACTIONS = True

# --- API ------------------------------------------------------------------------------------------
# The largest request body accepted, in bytes (413 with a JSON error above it). 5 MB holds a full batch of
# 10,000 messages of up to about 500 bytes each; Django's own cap on form bodies is kept the same.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["deliveries.api.authentication.ApiKeyAuthentication"],
    # A valid key (401 without one), then the scope its endpoint needs (403 naming it): deliveries.api.permissions.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "deliveries.api.permissions.HasKeyScope",
    ],
    # Each key's own rate (ApiKey.rate, 429 with Retry-After); keys without one are not counted.
    "DEFAULT_THROTTLE_CLASSES": ["deliveries.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["deliveries.api.filters.BoundedFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # DRF's parsers and error handling, with JSON answers for what Django would refuse as an HTML page.
    "DEFAULT_PARSER_CLASSES": [
        "deliveries.api.errors.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "deliveries.api.errors.api_exception_handler",
}
# /api/schema/ and /api/docs/ need an API key or a staff session unless API_DOCS_PUBLIC (messaging_project/urls.py).
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=False)
SPECTACULAR_SETTINGS = {
    # Swagger UI from the drf-spectacular-sidecar package through our static files, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Tidings API",
    "DESCRIPTION": "Send and track SMS and email through Tidings.",
    "VERSION": "1.0.0",
    # The enum hook is drf-spectacular's default; ours documents the errors every operation can answer.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "deliveries.api.schema.document_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "content.models.Channel",
        "StatusEnum": "deliveries.models.Status",
        # A campaign's status is in its detail and in its list's item (two components): named once, as before.
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "DependencyConditionEnum": "deliveries.models.DependencyCondition",
    },
}

# `Authorization: Bearer <HEALTH_TOKEN>` on /health/ready shows each check's details; without it (or with this
# unset) the answer is only {"status": "ok"} or {"status": "failing"}, so nobody learns our internals from it.
HEALTH_TOKEN = env("HEALTH_TOKEN", default="")

# --- Metrics for Prometheus (docs/metrics.md) ------------------------------------------------------
# GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`; unset, /metrics answers 404.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The directory where every web and worker process of this host keeps its metrics (prometheus_client's multiprocess
# mode; read from the environment by prometheus_client itself). Empty it before the processes start. Unset: each
# process counts for itself, and /metrics shows the web process's own.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
# A worker host without a web process serves its workers' metrics on this port (run_worker); unset: none.
METRICS_PORT = env.int("METRICS_PORT", default=None)
METRICS_ADDR = env("METRICS_ADDR", default="127.0.0.1")
# How long /metrics keeps what it read from the database and Redis, so that many scrapes cost one read.
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=5.0)

# --- Logs (docs/operations.md, "Logs") ------------------------------------------------------------
# Human-readable lines by default; LOG_FORMAT=json gives one JSON object a line for a log pipeline. Either way each
# line carries the job, message, campaign, channel and provider it is about, and no full recipient ever.
LOG_FORMAT = env("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in _log_context.FORMATS:
    raise ImproperlyConfigured(
        f"LOG_FORMAT must be one of {', '.join(_log_context.FORMATS)} (text is the default), not {LOG_FORMAT!r}."
    )
LOG_LEVEL = env("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {LOG_LEVEL!r}.")
LOGGING = _log_context.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

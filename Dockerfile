# Tidings: one image for web, worker, dispatcher and the migration step; the command chooses (docs/deployment.md).
#   docker build -t tidings .
#   docker run --env-file prod.env tidings web | worker | dispatcher | migrate | python manage.py ...
# The base is pinned by tag; pin it by digest too (python:3.11-slim-bookworm@sha256:...) once you build in CI.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the locked dependencies, Chart.js, the static files ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# fetch_static_vendor.sh downloads Chart.js from the npm registry with curl and checks its sha512 with openssl.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl openssl \
    && rm -rf /var/lib/apt/lists/*
# requirements.lock pins every runtime dependency with its hashes: a changed or substituted file refuses to
# install. Wheels only: every locked package has one for CPython 3.11 on x86_64 (pycurl's brings libcurl).
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.lock
WORKDIR /app
COPY scripts/fetch_static_vendor.sh scripts/fetch_static_vendor.sh
RUN scripts/fetch_static_vendor.sh
COPY . .
# collectstatic imports the production settings, which refuse to load without these three; no value is used for
# anything else and none reaches the runtime image.
RUN SECRET_KEY=collectstatic-only-not-a-secret \
    SUPPRESSION_HASH_KEY=collectstatic-only-not-a-secret \
    EMAIL_BACKEND=django.core.mail.backends.dummy.EmailBackend \
    DJANGO_SETTINGS_MODULE=messaging_project.settings.production \
    /opt/venv/bin/python manage.py collectstatic --noinput --verbosity 0 \
    && test -s staticfiles/vendor/chartjs/chart.umd.min.js \
    && /opt/venv/bin/python -m compileall -q -j 0 .

# --- runtime: no compiler, no curl, a user without a login -------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=messaging_project.settings.production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/tidings-metrics \
    PORT=8000
RUN groupadd --system --gid 10001 tidings \
    && useradd --system --uid 10001 --gid tidings --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tidings
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# /health/live never touches the database or Redis: it says this process serves (README "Health").
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "deploy/docker/healthcheck.py"]
ENTRYPOINT ["deploy/docker/entrypoint.sh"]
CMD ["web"]

#!/bin/sh
# The image's entry point: the first word names the process, as the Procfile's do (docs/deployment.md);
# anything else runs as given (`python manage.py createsuperuser`). One process per container, so each empties its
# own metrics directory before it starts (scripts/empty_metrics_dir.sh says why).
set -eu
# Every command needs the directory to exist (`manage.py check` fails on a PROMETHEUS_MULTIPROC_DIR that is not one).
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then mkdir -p "$PROMETHEUS_MULTIPROC_DIR"; fi
process="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$process" in
  web)
    # No control socket: gunicorn puts it under $HOME, which the image's user has none of (and gunicornc is not
    # how a container is managed).
    scripts/empty_metrics_dir.sh
    exec gunicorn messaging_project.wsgi --bind "0.0.0.0:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      --worker-class gthread --threads "${WEB_THREADS:-4}" --access-logfile - --no-control-socket "$@" ;;
  worker)
    scripts/empty_metrics_dir.sh
    exec python manage.py run_worker "$@" ;;
  dispatcher)
    scripts/empty_metrics_dir.sh
    exec python manage.py run_dispatcher "$@" ;;
  migrate)
    exec python manage.py migrate --noinput "$@" ;;
  fakes)
    exec python -m fake_providers "$@" ;;
  *)
    exec "$process" "$@" ;;
esac

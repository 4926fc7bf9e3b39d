#!/usr/bin/env bash
# Make sure a Redis answers at REDIS_URL. If none does and redis-server is installed, start a local one
# (no persistence, data under .run/). Exits non-zero with one readable line otherwise.
set -u
url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
py="${PYTHON:-.venv/bin/python}"
ping() { "$py" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()" "$url" 2>/dev/null; }
if ping; then exit 0; fi
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=6379
if [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
  echo "Redis is not answering at $host:$port; start it or set REDIS_URL to a running Redis." >&2; exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "No Redis at $host:$port and redis-server is not installed: install Redis (apt-get install redis-server) or set REDIS_URL." >&2
  exit 1
fi
mkdir -p .run
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$PWD/.run" \
  --logfile "$PWD/.run/redis.log" >/dev/null
for _ in $(seq 1 50); do ping && { echo "Started a local Redis on 127.0.0.1:$port (log: .run/redis.log)."; exit 0; }; sleep 0.1; done
echo "Started redis-server on port $port but it does not answer; see .run/redis.log." >&2
exit 1

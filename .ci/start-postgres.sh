#!/usr/bin/env bash
# Starts a throw-away PostgreSQL on loopback for the test suite and prints its URL.
# Usage: eval "$(.ci/start-postgres.sh)"   → sets TOLLGATE_TEST_POSTGRES_URL
# Needs Debian's postgresql package (.ci/run installs it). Runs the server as the `postgres` user,
# because PostgreSQL refuses to run as root.
set -euo pipefail
PORT="${TOLLGATE_PG_PORT:-54329}"
DATA="${TOLLGATE_PG_DATA:-/tmp/tollgate-pg-$PORT}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! as_postgres "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
  as_postgres "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  as_postgres "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DATA -c fsync=on" start >/dev/null
fi
as_postgres "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='tollgate'" | grep -q 1 ||
  as_postgres "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE ROLE tollgate LOGIN PASSWORD 'tollgate'"
as_postgres "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='tollgate_test'" | grep -q 1 ||
  as_postgres "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE tollgate_test OWNER tollgate"
echo "export TOLLGATE_TEST_POSTGRES_URL=postgres://tollgate:tollgate@127.0.0.1:$PORT/tollgate_test"

#!/usr/bin/env bash
# Start the Debian PostgreSQL cluster and make the role the test suite creates databases with.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! as_root pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
  as_root pg_ctlcluster "$ver" main start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
pg_isready -h 127.0.0.1
as_postgres psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'perfloop') THEN
    CREATE ROLE perfloop LOGIN CREATEDB PASSWORD 'perfloop';
  END IF;
END$$;
SQL

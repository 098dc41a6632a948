#!/usr/bin/env bash
# Starts the machine's PostgreSQL 15 for the store tests and prints the admin URL to use as
# OW_TEST_POSTGRES_URL. Installs it (Debian) or creates the cluster when missing. Idempotent.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  echo "==> installing PostgreSQL 15" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
fi
if ! pg_lsclusters -h | grep -q '^15 *main'; then
  pg_createcluster 15 main >&2
fi
if ! pg_lsclusters -h | grep -q '^15 *main .* online'; then
  pg_ctlcluster 15 main start >&2
fi
for _ in $(seq 1 50); do
  if su postgres -c "pg_isready -q -h 127.0.0.1 -p 5432"; then break; fi
  sleep 0.2
done
su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'onewindow-ci'\"" >&2
echo "postgres://postgres:onewindow-ci@127.0.0.1:5432/postgres"

#!/usr/bin/env bash
# Install (if missing), start and prepare a local PostgreSQL 15 + PostGIS 3 for geocube_dask.
# Idempotent. Run as root on Debian 12 (the server itself runs as the postgres user).
#   - a password-authenticated role $GC_PG_USER allowed to create databases,
#   - a database $GC_PG_DB owned by it with the postgis extension,
#   - a template database geocube_template (postgis enabled) that tests clone per worker.
# Settings use the GC_PG_* prefix: Debian's tools read PGCLUSTER/PGPORT and libpq reads PG*.
# The last line of stdout is the SQLAlchemy URL of $GC_PG_DB.
set -euo pipefail
GC_PG_MAJOR="${GC_PG_MAJOR:-15}"
GC_PG_CLUSTER="${GC_PG_CLUSTER:-main}"
GC_PG_PORT="${GC_PG_PORT:-5432}"
GC_PG_DB="${GC_PG_DB:-geocube}"
GC_PG_USER="${GC_PG_USER:-geocube}"
GC_PG_PASSWORD="${GC_PG_PASSWORD:-geocube}"

if [ "$(id -u)" != 0 ]; then
  echo "setup-postgis.sh: run as root (it installs packages and starts the server as postgres)" >&2
  exit 1
fi

pkgs="postgresql-${GC_PG_MAJOR} postgresql-${GC_PG_MAJOR}-postgis-3"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "${GC_PG_MAJOR}/${GC_PG_CLUSTER}"; then
  pg_createcluster "${GC_PG_MAJOR}" "${GC_PG_CLUSTER}" -p "${GC_PG_PORT}" >/dev/null
fi
status() { pg_lsclusters -h | awk -v v="$GC_PG_MAJOR" -v c="$GC_PG_CLUSTER" '$1==v && $2==c {print $'"$1"'}'; }
if ! status 4 | grep -q online; then
  pg_ctlcluster "${GC_PG_MAJOR}" "${GC_PG_CLUSTER}" start
fi
port="$(status 3)"
for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.5; done
pg_isready -q -h 127.0.0.1 -p "$port" || { echo "PostgreSQL did not start on port $port" >&2; exit 1; }

psql_su() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_su -c "SELECT 1 FROM pg_roles WHERE rolname='${GC_PG_USER}'")" != 1 ]; then
  psql_su -c "CREATE ROLE \"${GC_PG_USER}\" LOGIN CREATEDB PASSWORD '${GC_PG_PASSWORD}'"
fi
# the tests drop their databases WITH (FORCE), which must also end sessions of other roles on them (an
# autovacuum worker on a freshly filled database): that takes pg_signal_backend
psql_su -c "GRANT pg_signal_backend TO \"${GC_PG_USER}\"" >/dev/null
for db in geocube_template "${GC_PG_DB}"; do
  if [ "$(psql_su -c "SELECT 1 FROM pg_database WHERE datname='${db}'")" != 1 ]; then
    psql_su -c "CREATE DATABASE \"${db}\" OWNER \"${GC_PG_USER}\""
  fi
  psql_su -d "${db}" -c "SET client_min_messages=warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS btree_gist"
done
psql_su -c "ALTER DATABASE geocube_template IS_TEMPLATE true" >/dev/null
echo "postgis $(psql_su -d "${GC_PG_DB}" -c 'SELECT postgis_lib_version()') on 127.0.0.1:${port}" >&2
echo "postgresql+psycopg2://${GC_PG_USER}:${GC_PG_PASSWORD}@127.0.0.1:${port}/${GC_PG_DB}"

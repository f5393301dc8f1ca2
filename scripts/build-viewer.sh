#!/usr/bin/env bash
# Builds the /viewer page of `geocube serve`: installs the front-end's packages from the npm registry
# (`npm ci`, exactly the versions of viewer/package-lock.json) and copies the page and Leaflet into
# geocube_dask/api/static/viewer/ (git-ignored), from where the API serves them: nothing is loaded from
# the internet when the page runs. Needs node and npm (Debian: apt-get install -y nodejs npm).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null; then
    echo "build-viewer.sh: npm not found; install node and npm (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
fi
(cd viewer && npm ci --no-audit --no-fund --loglevel=error)
out=geocube_dask/api/static/viewer
rm -rf "$out"
mkdir -p "$out"
cp viewer/src/index.html viewer/src/viewer.js viewer/src/viewer.css "$out/"
cp viewer/node_modules/leaflet/dist/leaflet.js viewer/node_modules/leaflet/dist/leaflet.css "$out/"
cp -r viewer/node_modules/leaflet/dist/images "$out/images"
cp viewer/node_modules/leaflet/LICENSE "$out/LEAFLET-LICENSE"
echo "viewer built in $out"

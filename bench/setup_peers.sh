#!/usr/bin/env bash
# Create bench/.venv-peers: odc-stac and stackstac, isolated from the main environment
# (stackstac 0.5.1 needs pandas < 3). Idempotent: does nothing when the venv already has these pins.
#
#   bash bench/setup_peers.sh            # PYTHON=/path/to/python3.11 to choose the interpreter
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"

# What works together (resolved on Python 3.11, rasterio 1.4.4 = the main environment's GDAL 3.10).
pins=(
  "odc-stac==0.5.3"
  "odc-geo==0.5.3"
  "odc-loader==0.6.5"
  "stackstac==0.5.1"
  "pystac==1.15.2"
  "rasterio==1.4.4"
  "pandas==2.3.3"
  "numpy==2.4.6"
  "xarray==2026.9.0"
  "dask==2026.8.0"
  "distributed==2026.8.0"
  "zarr==3.1.6"
  "pyproj==3.7.2"
)
stamp="$venv/.pins"
wanted="$(printf '%s\n' "${pins[@]}")"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi

echo "setting up $venv …" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet "${pins[@]}" >&2
"$venv/bin/python" - <<'EOF' >&2
import odc.stac, stackstac, pandas, rasterio
print("peers ready: odc-stac", odc.stac.__version__, "| stackstac", stackstac.__version__,
      "| pandas", pandas.__version__, "| rasterio", rasterio.__version__, "GDAL", rasterio.__gdal_version__)
EOF
printf '%s\n' "${pins[@]}" > "$stamp"

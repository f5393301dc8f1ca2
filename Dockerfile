# The image of the Geocube on Kubernetes (cluster/): API server, migration Job, dask scheduler and
# workers all run it. Build: docker build -t geocube-dask:latest .
# the /viewer page: Leaflet from the npm registry (viewer/package-lock.json) and the page, built into the
# folder the API serves (scripts/build-viewer.sh)
FROM node:20-bookworm-slim AS viewer
WORKDIR /src
COPY scripts/build-viewer.sh scripts/
COPY viewer viewer
RUN bash scripts/build-viewer.sh

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/geocube
# rasterio, pyproj, shapely and psycopg2-binary come as wheels with their libraries (GDAL, PROJ, GEOS, libpq)
COPY pyproject.toml README.md ./
COPY geocube_dask ./geocube_dask
COPY --from=viewer /src/geocube_dask/api/static/viewer ./geocube_dask/api/static/viewer
RUN pip install ".[kube]" \
    && useradd --create-home --uid 1000 geocube
USER 1000
# API (geocube serve), scheduler, scheduler dashboard + /api/v1, worker dashboard
EXPOSE 8000 8786 8787 8788
CMD ["geocube", "--help"]

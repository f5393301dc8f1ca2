# The image of the Geocube on Kubernetes (cluster/): API server, migration Job, dask scheduler and
# workers all run it. Build: docker build -t geocube-dask:latest .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/geocube
# rasterio, pyproj, shapely and psycopg2-binary come as wheels with their libraries (GDAL, PROJ, GEOS, libpq)
COPY pyproject.toml README.md ./
COPY geocube_dask ./geocube_dask
RUN pip install ".[kube]" \
    && useradd --create-home --uid 1000 geocube
USER 1000
# API (geocube serve), scheduler, scheduler dashboard + /api/v1, worker dashboard
EXPOSE 8000 8786 8787 8788
CMD ["geocube", "--help"]

# One image for every Ingest job: `docker run IMAGE run DATASET --partition P`, `validate`,
# `serve --host 0.0.0.0`, and (with another entrypoint) Dagster's code location and Celery workers.
# docs/deploy.md says how each is started. Secrets come from the environment, never from here.

# ---- build: a virtualenv with Ingest and its pinned dependencies (deploy/install.sh) ----------
FROM python:3.11.7-slim-bookworm AS build
ARG EXTRAS="celery"
ENV UV_NO_CACHE=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/install.sh deploy/install.sh
COPY ingest_assets ingest_assets
COPY ingest_resources ingest_resources
COPY ingest_api ingest_api
RUN INGEST_PYTHON=/usr/local/bin/python3.11 sh deploy/install.sh /opt/ingest /src "$EXTRAS"

# ---- runtime: the virtualenv, the dataset configs, a user that is not root --------------------
FROM python:3.11.7-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 ingest \
    && useradd --system --uid 10001 --gid ingest --home-dir /app --shell /usr/sbin/nologin ingest
COPY --from=build /opt/ingest /opt/ingest
WORKDIR /app
COPY --chown=ingest:ingest dagster.sqlite.yaml dagster.postgres.yaml workspace.yaml ./
COPY --chown=ingest:ingest dataset_configs dataset_configs
COPY --chown=ingest:ingest sample_data sample_data
ENV PATH="/opt/ingest/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INGEST_CONFIG_DIR=/app/dataset_configs \
    INGEST_STORE_ROOT=/app/.ingest_store \
    DAGSTER_HOME=/app/.dagster_home
RUN mkdir -p /app/.ingest_store /app/.dagster_home && chown ingest:ingest /app/.ingest_store /app/.dagster_home
USER 10001:10001
EXPOSE 8000 4000
ENTRYPOINT ["ingest"]
CMD ["--help"]

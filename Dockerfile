# ingest: the audience data ingestion worker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The pinned dependencies, checked against their hashes, in their own layer: it is rebuilt
# only when the lock changes (bash requirements/lock.sh).
COPY requirements/runtime.txt /tmp/requirements/runtime.txt
RUN pip install --require-hashes --no-deps -r /tmp/requirements/runtime.txt \
    && rm -rf /tmp/requirements

# The project itself, without dependencies: they are all in the layer above.
COPY pyproject.toml README.md /tmp/src/
COPY ingest /tmp/src/ingest
COPY migrations /tmp/src/migrations
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

COPY deploy/healthcheck.py /usr/local/lib/ingest-healthcheck.py
RUN useradd --create-home --uid 10001 ingest
USER ingest
WORKDIR /home/ingest

EXPOSE 8080
# Asks /healthz on the port the worker serves: INGEST_HTTP_PORT (from the environment or
# .env, as the worker reads it; 8080 by default).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/ingest-healthcheck.py"]

# `ingest run` stops cleanly on SIGTERM (the default stop signal).
ENTRYPOINT ["ingest"]
CMD ["run"]

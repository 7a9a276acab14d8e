# ingest: the audience data ingestion worker.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes. The
# stub package has the folders the build backend expects (migrations is force-included).
COPY pyproject.toml README.md ./
RUN mkdir ingest migrations && echo '__version__ = "0"' > ingest/__init__.py \
    && pip install . \
    && pip uninstall -y ingest \
    && rm -rf ingest migrations

COPY ingest ./ingest
COPY migrations ./migrations
RUN pip install --no-deps . && rm -rf build

RUN useradd --create-home --uid 10001 ingest
USER ingest
WORKDIR /home/ingest

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

# `ingest run` stops cleanly on SIGTERM (the default stop signal).
ENTRYPOINT ["ingest"]
CMD ["run"]

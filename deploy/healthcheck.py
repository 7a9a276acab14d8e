"""The image's HEALTHCHECK: exit 0 when the worker's /healthz answers 200, 1 otherwise.

It asks the port and address the worker serves on, read the way the worker reads them
(INGEST_HTTP_PORT and INGEST_HTTP_HOST, from the environment or from .env in the working
directory), so changing the port does not break the check. With INGEST_HTTP_PORT=0 the
worker serves nothing and there is nothing to ask: the check passes.
"""

from __future__ import annotations

import sys
import urllib.request

from ingest.config import load_settings
from ingest.errors import ConfigError

WILDCARDS = {"", "0.0.0.0", "::"}


def healthz_url(host: str, port: int) -> str:
    """Where /healthz answers for a server bound to host:port (a wildcard: loopback)."""
    if host in WILDCARDS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    if not settings.http_port:
        print("healthcheck: INGEST_HTTP_PORT=0, the health server is off")
        return 0
    url = healthz_url(settings.http_host, settings.http_port)
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            ok = response.status == 200
    except OSError as error:  # refused, timed out, or an HTTP error status (503: stuck)
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

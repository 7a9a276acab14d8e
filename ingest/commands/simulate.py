"""`ingest simulate`: serve the simulator of both vendors alone."""

from __future__ import annotations

import argparse

from ingest.commands import EXIT_OK
from ingest.config import Settings
from ingest.simulator import config_from_args, serve


async def main(args: argparse.Namespace, _settings: Settings) -> int:
    await serve(config_from_args(args), args.host, args.port)
    return EXIT_OK

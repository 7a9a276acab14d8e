"""The commands of `ingest`, one module each; `cli.py` parses and dispatches to them."""

EXIT_OK, EXIT_DEAD, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # stopped by SIGINT or SIGTERM, as a shell reports Ctrl-C

"""The commands of `ingest`, one module each; `cli.py` parses and dispatches to them."""

EXIT_OK, EXIT_DEAD, EXIT_USAGE = 0, 1, 2

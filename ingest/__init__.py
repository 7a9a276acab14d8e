"""Keeps PostgreSQL in step with Quividi VidiCenter and Angus.ai audience data."""

__version__ = "0.1.0"

"""The error family: the type of an error decides whether its job is retried."""

from __future__ import annotations

from datetime import date


class IngestError(Exception):
    """Something went wrong in ingest."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or type(self).__name__).strip()
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(IngestError):
    """The configuration is invalid."""


class UsageError(IngestError):
    """The command line is invalid."""


class MigrationError(IngestError):
    """The database schema cannot be migrated."""


# --- errors while working a job -------------------------------------------------------


class RetryableError(IngestError):
    """A passing failure: the job is tried again later."""

    def __init__(self, message: str | None = None, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class TerminalError(IngestError):
    """A failure that trying again cannot fix: the job is dead at once."""


class VendorUnavailable(RetryableError):
    """The vendor did not answer, or answered with a server error."""


class RateLimited(RetryableError):
    """The vendor asked us to slow down (429)."""


class ExportPending(RetryableError):
    """The export is not finished before the deadline; it goes on at the vendor."""


class ExportFailed(RetryableError):
    """The vendor reported the export as failed."""


class BadPayload(RetryableError):
    """The vendor's answer could not be parsed or does not have the documented shape."""


class BodyUnreadable(BadPayload):
    """The export's answer could not be read (cut short, or not JSON): no row of it is used."""


class RowError(BadPayload):
    """One row of an export does not have the documented shape: its scope's day fails alone."""

    def __init__(
        self, message: str | None = None, *, scope_id: int | None = None, day: date | None = None
    ) -> None:
        super().__init__(message)
        self.scope_id = scope_id  # the row's location_id or site_id, when it could be read
        self.day = day  # the day of the row's period_start, when it could be read


class VendorRejected(TerminalError):
    """The vendor refused the request as invalid (4xx)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # the vendor's own error code, when it gives one


class AuthError(TerminalError):
    """The vendor refused our credentials (401/403): check the configured token."""

    def __init__(self, message: str | None = None, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class LeaseLost(IngestError):
    """Another worker took these jobs over after our lease ran out."""

"""Settings: built once from the environment and `.env`, then passed down."""

from __future__ import annotations

import ipaddress
import json
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ingest.errors import ConfigError

ENV_PREFIX = "INGEST_"
ANGUS_METRICS = (
    "passing_by",
    "interested",
    "stop_time",
    "attention_time",
    "gender",
    "category",
    "satisfaction",
)


class LogFormat(StrEnum):
    auto = "auto"  # JSON when the log stream is not a terminal, console lines when it is
    json = "json"  # always JSON lines
    console = "console"  # always human-readable lines


class AngusStream(BaseModel):
    """One Angus.ai stream's credentials; the stream (its client_id) is its account."""

    username: str
    client_id: str
    access_token: SecretStr


def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses (IPv4 127/8 and ::1)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_ints(value: Any) -> Any:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        return parts
    return value


def vidicenter_https(value: str) -> str:
    """A VidiCenter base URL without its trailing slash; ValueError unless https (or loopback)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as https://vidicenter.quividi.com")
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        raise ValueError(
            "must be https:// (a plain-http call revokes the token); "
            "http:// is accepted only for a loopback host"
        )
    return value.rstrip("/")


def location_list(value: Any) -> Any:
    """Comma-separated location ids (or a list of them), or `all`."""
    items = _split_ints(value)
    if isinstance(items, list) and [str(i) for i in items] == ["all"]:
        return ["all"]
    if not isinstance(items, list):
        raise ValueError("must be comma-separated location ids (1,2,3) or 'all'")
    for item in items:
        if isinstance(item, bool) or not str(item).isdigit():
            raise ValueError("must be comma-separated location ids (1,2,3) or 'all'")
    return [str(int(i)) for i in items]


def vidicenter_account_name(url: str, username: str) -> str:
    """A VidiCenter account's name: the base URL's host and the user (`host/user`)."""
    return f"{(urlsplit(url).hostname or '').lower()}/{username}"


class VidiCenterAccount(BaseModel):
    """One VidiCenter account: where, who, its token and the locations to keep."""

    url: str = "https://vidicenter.quividi.com"
    username: str
    token: SecretStr
    locations: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        return vidicenter_https(value)

    @field_validator("username")
    @classmethod
    def _user(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("locations", mode="before")
    @classmethod
    def _locations(cls, value: Any) -> Any:
        return location_list(value)

    @property
    def name(self) -> str:
        """The account as jobs, rows, budgets and export places name it: `host/user`."""
        return vidicenter_account_name(self.url, self.username)

    @property
    def all_locations(self) -> bool:
        return self.locations == ["all"]


class Settings(BaseSettings):
    """Every setting of ingest; environment variables start with INGEST_."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- database -----------------------------------------------------------------------
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="target PostgreSQL (15 or newer)",
    )
    database_pool_size: int = Field(
        default=5, ge=2, le=100, description="connections in the worker's pool"
    )

    # --- VidiCenter ---------------------------------------------------------------------
    vidicenter_url: str = Field(
        default="https://vidicenter.quividi.com",
        description="VidiCenter base URL; must be https:// unless the host is loopback",
    )
    vidicenter_username: str | None = Field(
        default=None, description="VidiCenter user; VidiCenter is not scheduled while unset"
    )
    vidicenter_token: SecretStr | None = Field(
        default=None, description="VidiCenter API token (secret: never logged)"
    )
    vidicenter_locations: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated location ids, or `all` for every active location",
    )
    vidicenter_max_exports: int = Field(
        default=3,
        ge=1,
        le=3,
        description="exports running at once at the vendor, across all workers (vendor limit: 3)",
    )
    vidicenter_calls_per_minute: int = Field(
        default=50,
        ge=1,
        le=50,
        description="API calls a minute, across all workers (vendor limit: 50)",
    )
    vidicenter_max_connections: int = Field(
        default=2, ge=1, le=2, description="simultaneous connections (vendor limit: 2)"
    )
    vidicenter_locations_per_export: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="most locations (or sites) in one export, listed or named through their site",
    )
    vidicenter_max_rows_per_export: int = Field(
        default=1_000_000,
        ge=1,
        le=20_000_000,
        description="most rows the planner packs into one export (bounds the worker's disk and"
        " transaction)",
    )
    vidicenter_max_request_line: int = Field(
        default=4096,
        ge=256,
        le=65536,
        description="longest request line of an export, in bytes (servers often refuse 8 KB)",
    )
    vidicenter_poll_initial_s: float = Field(
        default=3.0,
        gt=0,
        description=(
            "seconds before the first poll of an export while no build time is known "
            "(longer for a bigger export)"
        ),
    )
    vidicenter_poll_max_s: float = Field(
        default=30.0, gt=0, description="longest wait between polls of an export, in seconds"
    )
    vidicenter_export_deadline_s: float = Field(
        default=3600.0, gt=0, description="how long to poll one export before trying again later"
    )
    vidicenter_rebuilds_after_failure: int = Field(
        default=2,
        ge=0,
        le=10,
        description="rebuilds (force_rebuild) of a failed export before its jobs are dead",
    )
    vidicenter_locations_refresh_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often `ingest run` refreshes the list when LOCATIONS=all",
    )
    vidicenter_schedule: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["viewers:1h", "ots:1h"],
        description="what `ingest run` keeps up to date: DATA_TYPE:RESOLUTION pairs",
    )
    vidicenter_accounts: Annotated[list[VidiCenterAccount], NoDecode] = Field(
        default_factory=list,
        description='more VidiCenter accounts, a JSON list of {"url", "username", "token", '
        '"locations"} (secrets); each has its own budget and export cap',
    )

    # --- Angus.ai -----------------------------------------------------------------------
    angus_console_url: str = Field(
        default="https://console.angus.ai", description="Angus token host"
    )
    angus_data_url: str = Field(default="https://data.angus.ai", description="Angus data host")
    angus_streams: Annotated[list[AngusStream], NoDecode] = Field(
        default_factory=list,
        description='JSON list of {"username", "client_id", "access_token"} (secrets)',
    )
    angus_metrics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(ANGUS_METRICS),
        description="Angus metrics to fetch, comma-separated",
    )
    angus_resolution: Literal["by_hour", "by_day", "global"] = Field(
        default="by_hour",
        description="Angus time bucket `ingest run` fetches: by_hour, by_day or global",
    )
    angus_max_concurrency: int = Field(default=3, ge=1, le=20, description="Angus requests at once")
    angus_token_margin_s: float = Field(
        default=300.0,
        ge=0,
        description="fetch a new Angus token this many seconds before it expires",
    )
    angus_max_pages: int = Field(
        default=1000, ge=1, description="pages of one Angus answer before it is treated as a loop"
    )

    # --- HTTP ---------------------------------------------------------------------------
    http_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="seconds an HTTP request may wait for an answer, or for its next bytes",
    )
    http_retries: int = Field(
        default=4,
        ge=0,
        le=20,
        description="retries of one call after a 5xx, a 429 or a network error",
    )

    # --- jobs and worker ----------------------------------------------------------------
    job_max_attempts: int = Field(
        default=5, ge=1, le=100, description="tries of a job before it is dead"
    )
    job_lease_s: float = Field(
        default=300.0,
        ge=5,
        description="seconds without a heartbeat before another worker takes a claimed job over",
    )
    job_retry_base_s: float = Field(
        default=30.0,
        ge=0,
        description="first wait before a failed job is tried again (doubles each try)",
    )
    job_retry_max_s: float = Field(
        default=3600.0, ge=0, description="longest wait before a failed job is tried again"
    )
    worker_idle_poll_s: float = Field(
        default=5.0, gt=0, description="how often an idle worker looks for due jobs, in seconds"
    )
    schedule_interval_s: float = Field(
        default=900.0, gt=0, description="how often `ingest run` enqueues recent days, in seconds"
    )
    schedule_lookback_days: int = Field(
        default=2,
        ge=0,
        le=366,
        description="`ingest run` keeps this many days before today up to date",
    )
    settle_s: float = Field(
        default=3600.0,
        ge=0,
        description="a day is final once every location has uploaded this many seconds past "
        "its end (Angus: once it has ended this long ago)",
    )
    upload_silence_s: float = Field(
        default=259200.0,
        gt=0,
        description="a location that has not uploaded for this long is reported and no longer "
        "holds its days open",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, seconds to wait for running jobs before handing them back",
    )
    day_timezone: str = Field(
        default="UTC", description="time zone of a job's day for Angus windows (IANA name)"
    )

    # --- health, metrics, logs ----------------------------------------------------------
    http_host: str = Field(
        default="0.0.0.0", description="address of the health and metrics server of `ingest run`"
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="port of the health and metrics server (0 = off)"
    )
    stall_s: float = Field(
        default=900.0,
        ge=0,
        description="/readyz reports the worker stalled when jobs are due and none has moved "
        "for this long, in seconds (0 = never)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="debug, info, warning or error"
    )
    log_format: LogFormat = Field(
        default=LogFormat.auto, description="auto (JSON unless a terminal), json or console"
    )

    @field_validator("vidicenter_url")
    @classmethod
    def _vidicenter_https(cls, value: str) -> str:
        return vidicenter_https(value)

    @field_validator("angus_console_url", "angus_data_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("postgres", "postgresql"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("vidicenter_locations", mode="before")
    @classmethod
    def _locations(cls, value: Any) -> Any:
        return location_list(value)

    @field_validator("angus_streams", mode="before")
    @classmethod
    def _streams(cls, value: Any) -> Any:
        return _json_list(value, '{"username", "client_id", "access_token"}')

    @field_validator("vidicenter_accounts", mode="before")
    @classmethod
    def _accounts(cls, value: Any) -> Any:
        return _json_list(value, '{"url", "username", "token", "locations"}')

    @model_validator(mode="after")
    def _accounts_once(self) -> Settings:
        names = [a.name for a in self.vidicenter_account_list]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"INGEST_VIDICENTER_ACCOUNTS: account {twice[0]} is configured twice")
        streams = [s.client_id for s in self.angus_streams]
        if twice := sorted({n for n in streams if streams.count(n) > 1}):
            raise ValueError(f"INGEST_ANGUS_STREAMS: stream {twice[0]} is configured twice")
        return self

    @field_validator("angus_metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return _split_ints(value)

    @field_validator("vidicenter_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        items = _split_ints(value)
        for item in items:
            if ":" not in str(item):
                raise ValueError("must be comma-separated DATA_TYPE:RESOLUTION pairs (viewers:1h)")
        return items

    @field_validator("day_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as UTC or Europe/Paris") from None
        return value

    # --- derived ------------------------------------------------------------------------
    @property
    def vidicenter_account_list(self) -> list[VidiCenterAccount]:
        """Every VidiCenter account: the single-account variables' (when set), then
        INGEST_VIDICENTER_ACCOUNTS."""
        first = []
        if self.vidicenter_username and self.vidicenter_token:
            first.append(
                VidiCenterAccount(
                    url=self.vidicenter_url,
                    username=self.vidicenter_username,
                    token=self.vidicenter_token,
                    locations=self.vidicenter_locations,
                )
            )
        return first + list(self.vidicenter_accounts)

    def locations_variable(self, account: VidiCenterAccount) -> str:
        """Where the account's locations are configured, for messages."""
        single = self.vidicenter_username and self.vidicenter_token
        if single and account.name == vidicenter_account_name(
            self.vidicenter_url, str(self.vidicenter_username)
        ):
            return "INGEST_VIDICENTER_LOCATIONS"
        return f"INGEST_VIDICENTER_ACCOUNTS ({account.name}) locations"

    @property
    def vidicenter_configured(self) -> bool:
        return bool(self.vidicenter_account_list)

    @property
    def angus_configured(self) -> bool:
        return bool(self.angus_streams)

    @property
    def vidicenter_all_locations(self) -> bool:
        return self.vidicenter_locations == ["all"]

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [s.access_token.get_secret_value() for s in self.angus_streams]
        values += [a.token.get_secret_value() for a in self.vidicenter_accounts]
        if self.vidicenter_token is not None:
            values.append(self.vidicenter_token.get_secret_value())
        return [v for v in values if v]


def _json_list(value: Any, shape: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise ValueError(f"must be a JSON list of {shape} objects") from None
    return value


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per bad variable, naming it and what it accepts."""
    lines = []
    for item in error.errors():
        loc = item.get("loc") or ()
        name = ENV_PREFIX + str(loc[0]).upper() if loc else "configuration"
        where = "" if len(loc) <= 1 else " (" + ".".join(str(p) for p in loc[1:]) + ")"
        message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
        if not loc and message.startswith(ENV_PREFIX):  # a check across variables names its own
            lines.append(message)
            continue
        lines.append(f"{name}{where}: {message}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError("\n".join(format_validation_error(error))) from None
    except (ValueError, json.JSONDecodeError) as error:  # a JSON variable that does not parse
        raise ConfigError(f"configuration: {error}") from None

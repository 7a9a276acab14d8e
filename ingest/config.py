"""Settings: built once from the environment and `.env`, then passed down."""

from __future__ import annotations

import ipaddress
import json
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ingest.errors import ConfigError

ENV_PREFIX = "INGEST_"


class LogFormat(StrEnum):
    auto = "auto"  # JSON when the log stream is not a terminal, console lines when it is
    json = "json"  # always JSON lines
    console = "console"  # always human-readable lines


class AngusStream(BaseModel):
    """One Angus.ai stream's credentials."""

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
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_pool_size: int = Field(default=5, ge=2, le=100)

    # --- VidiCenter ---------------------------------------------------------------------
    vidicenter_url: str = "https://vidicenter.quividi.com"
    vidicenter_username: str | None = None
    vidicenter_token: SecretStr | None = None
    vidicenter_locations: Annotated[list[str], NoDecode] = Field(default_factory=list)
    vidicenter_max_exports: int = Field(default=3, ge=1, le=3)
    vidicenter_calls_per_minute: int = Field(default=50, ge=1, le=50)
    vidicenter_max_connections: int = Field(default=2, ge=1, le=2)
    vidicenter_locations_per_export: int = Field(default=20, ge=1, le=500)
    vidicenter_poll_initial_s: float = Field(default=3.0, gt=0)
    vidicenter_poll_max_s: float = Field(default=30.0, gt=0)
    vidicenter_export_deadline_s: float = Field(default=3600.0, gt=0)
    vidicenter_rebuilds_after_failure: int = Field(default=2, ge=0, le=10)
    vidicenter_locations_refresh_s: float = Field(default=3600.0, gt=0)
    vidicenter_schedule: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["viewers:1h", "ots:1h"]
    )

    # --- Angus.ai -----------------------------------------------------------------------
    angus_console_url: str = "https://console.angus.ai"
    angus_data_url: str = "https://data.angus.ai"
    angus_streams: Annotated[list[AngusStream], NoDecode] = Field(default_factory=list)
    angus_metrics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "passing_by", "interested", "stop_time", "attention_time",
            "gender", "category", "satisfaction",
        ]
    )
    angus_resolution: Literal["by_hour", "by_day", "global"] = "by_hour"
    angus_max_concurrency: int = Field(default=3, ge=1, le=20)
    angus_token_margin_s: float = Field(default=300.0, ge=0)
    angus_max_pages: int = Field(default=1000, ge=1)

    # --- HTTP ---------------------------------------------------------------------------
    http_timeout_s: float = Field(default=60.0, gt=0)
    http_retries: int = Field(default=4, ge=0, le=20)

    # --- jobs and worker ----------------------------------------------------------------
    job_max_attempts: int = Field(default=5, ge=1, le=100)
    job_lease_s: float = Field(default=300.0, ge=5)
    job_retry_base_s: float = Field(default=30.0, ge=0)
    job_retry_max_s: float = Field(default=3600.0, ge=0)
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    worker_idle_poll_s: float = Field(default=5.0, gt=0)
    schedule_interval_s: float = Field(default=900.0, gt=0)
    schedule_lookback_days: int = Field(default=2, ge=0, le=366)
    schedule_reingest_days: int = Field(default=2, ge=0, le=31)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    day_timezone: str = "UTC"

    # --- health, metrics, logs ----------------------------------------------------------
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: LogFormat = LogFormat.auto

    @field_validator("vidicenter_url")
    @classmethod
    def _vidicenter_https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://vidicenter.quividi.com")
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            raise ValueError(
                "must be https:// (a plain-http call revokes the token); "
                "http:// is accepted only for a loopback host"
            )
        return value.rstrip("/")

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
        items = _split_ints(value)
        if items == ["all"]:
            return items
        for item in items:
            if not str(item).isdigit():
                raise ValueError("must be comma-separated location ids (1,2,3) or 'all'")
        return [str(int(i)) for i in items]

    @field_validator("angus_streams", mode="before")
    @classmethod
    def _streams(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                raise ValueError(
                    'must be a JSON list of {"username", "client_id", "access_token"} objects'
                ) from None
        return value

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
    def vidicenter_configured(self) -> bool:
        return bool(self.vidicenter_username and self.vidicenter_token)

    @property
    def angus_configured(self) -> bool:
        return bool(self.angus_streams)

    @property
    def vidicenter_all_locations(self) -> bool:
        return self.vidicenter_locations == ["all"]

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [s.access_token.get_secret_value() for s in self.angus_streams]
        if self.vidicenter_token is not None:
            values.append(self.vidicenter_token.get_secret_value())
        return [v for v in values if v]


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per bad variable, naming it and what it accepts."""
    lines = []
    for item in error.errors():
        loc = item.get("loc") or ()
        name = ENV_PREFIX + str(loc[0]).upper() if loc else "configuration"
        where = "" if len(loc) <= 1 else " (" + ".".join(str(p) for p in loc[1:]) + ")"
        message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
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

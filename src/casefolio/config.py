"""Settings: environment variables prefixed ``CASEFOLIO_`` and an optional TOML file, read once."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

#: Where a data folder keeps its SQLite database (unless CASEFOLIO_DATABASE_URL says
#: otherwise) and its blobs (unless CASEFOLIO_BLOB_STORE does).
DATABASE_FILE = "casefolio.db"
BLOB_FOLDER = "blobs"
#: The Redis URL schemes the rate limits' storage (`limits`) speaks.
_REDIS_SCHEMES = frozenset(
    f"{server}{kind}"
    for server in ("redis", "valkey")
    for kind in ("", "s", "+unix", "+sentinel", "+cluster")
)


def default_data_dir() -> Path:
    """The per-user installation (`~/.local/share/casefolio` on Linux)."""
    return Path(platformdirs.user_data_dir("casefolio", appauthor=False))


#: The longest a duration setting may be: longer ones only overflow a date somewhere.
CENTURY_DAYS = 36_500
CENTURY_HOURS = CENTURY_DAYS * 24
RetryDelay = Annotated[float, Field(ge=0, le=CENTURY_HOURS * 3600)]


class Settings(BaseSettings):
    """Everything casefolio can be configured with; see docs/configuration.md."""

    # No infinities or NaN anywhere: a duration of "inf" days passed its `gt=0` and failed
    # every background round that turned it into a timedelta.
    model_config = SettingsConfigDict(
        env_prefix="CASEFOLIO_", extra="forbid", frozen=True, allow_inf_nan=False
    )

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Folder for the SQLite file and local blobs."
    )
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite in the data directory."
    )
    database_pool_size: int = Field(
        20,
        ge=1,
        le=1000,
        description="PostgreSQL connections each process keeps open (10 more during bursts).",
    )
    database_statement_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="How long a PostgreSQL statement may take before its request answers 503.",
    )
    blob_store: str = Field(
        "", description="`s3://bucket/prefix` for S3; empty means `<data_dir>/blobs`."
    )
    s3_endpoint_url: str = Field("", description="Endpoint of an S3-compatible store.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str = Field("", description="S3 access key id.")
    s3_secret_access_key: str = Field("", description="S3 secret access key.")
    s3_read_timeout_seconds: float = Field(
        20,
        gt=0,
        le=3600,
        description="How long a request waits for the S3 store to send anything before it "
        "gives up (the upload or download then answers 503).",
    )
    redis_url: str = Field("", description="Redis URL for shared rate-limit counters.")
    rate_limit_per_minute: int = Field(50, ge=1, description="Default requests/minute per token.")
    max_upload_bytes: int = Field(
        10 * 1024**3, ge=1, description="Largest accepted upload, in bytes."
    )
    unclaimed_attachment_hours: float = Field(
        24.0,
        gt=0,
        le=CENTURY_HOURS,
        description="How long a v3 upload without a container waits to be claimed before "
        "`casefolio gc` removes it.",
    )
    host: str = Field("127.0.0.1", description="Address `casefolio serve` binds.")
    port: int = Field(8000, ge=0, le=65535, description="Port `casefolio serve` binds.")
    workers: int = Field(1, ge=1, description="Server worker processes.")
    server: Literal["uvicorn", "granian"] = Field("uvicorn", description="ASGI server.")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite durability; NORMAL may lose the last commits on power loss."
    )
    sqlite_lock_wait_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="How long a SQLite write waits for another process's write lock (then 503).",
    )
    fast_reads: bool = Field(
        True,
        description="Serve the hottest reads through the read-optimised path (fastpath/).",
    )
    migrate_on_start: bool = Field(True, description="Apply pending migrations on `serve`.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Log level of the server (the levels uvicorn and granian share)."
    )
    session_idle_minutes: float = Field(
        60.0,
        gt=0,
        le=CENTURY_HOURS * 60,
        description="A web sign-in ends after this long without a request.",
    )
    session_max_hours: float = Field(
        12.0,
        gt=0,
        le=CENTURY_HOURS,
        description="A web sign-in ends this long after it began, however used.",
    )
    password_link_hours: float = Field(
        72.0,
        gt=0,
        le=CENTURY_HOURS,
        description="How long an invitation or password-reset link can be used.",
    )
    signin_attempts_per_minute: int = Field(
        5, ge=1, description="Sign-in attempts allowed per account and minute."
    )
    signin_address_attempts_per_minute: int = Field(
        30, ge=1, description="Sign-in attempts allowed per client address and minute."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        [],
        description="Addresses or networks (comma-separated) of reverse proxies whose "
        "X-Forwarded-Proto and X-Forwarded-For are believed (for Secure cookies and "
        "per-address limits).",
    )
    # The trash and retention (domain/trash.py, domain/retention.py).
    trash_days: float = Field(
        30,
        gt=0,
        le=CENTURY_DAYS,
        description="Days a deleted document stays in the trash, restorable, before the "
        "background purge removes it (never while a legal hold covers it).",
    )
    # Outbound (outbound/): change feed, webhooks, worker.
    changes_retention_days: float = Field(
        90,
        gt=0,
        le=CENTURY_DAYS,
        description="Days the change feed keeps; an older cursor answers 410.",
    )
    worker_in_server: bool = Field(
        True,
        description="Run the webhook worker inside `casefolio serve`: in one of its processes"
        " per data folder, the others standing by.",
    )
    webhook_retry_schedule: Annotated[list[RetryDelay], NoDecode] = Field(
        [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
        min_length=1,
        description="Seconds before each delivery attempt (jittered by up to 10%).",
    )
    webhook_timeout_seconds: float = Field(15, gt=0, le=300, description="Per attempt.")
    webhook_failing_after: int = Field(
        5, ge=1, description="Consecutive failed attempts that mark an endpoint failing."
    )
    webhook_secret_overlap_hours: float = Field(
        24, ge=0, le=CENTURY_HOURS, description="How long a rotated-out webhook secret still signs."
    )
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        [],
        description="Networks webhook URLs may resolve into although private, loopback or "
        "link-local (e.g. 10.0.0.0/8); everything else of that kind is refused.",
    )

    # Full-text search (search/): extraction limits, applied per file.
    search_max_file_bytes: int = Field(
        50 * 1024**2,
        ge=0,
        description="Files larger than this are not read for search (status failed, with why).",
    )
    search_time_limit_seconds: float = Field(
        30, gt=0, le=3600, description="How long extracting one file's text may take."
    )
    search_memory_limit_mib: int = Field(
        2048,
        ge=64,
        description="Memory reading one file's text may take (MiB); more, and it fails.",
    )
    search_ocr: bool = Field(
        False,
        description="Read images and image-only PDFs by OCR (needs tesseract; PDFs pdftoppm).",
    )
    search_ocr_languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        max_length=200,
        description="The languages OCR reads, as tesseract's -l names them (eng+deu).",
    )
    search_max_text_chars: int = Field(
        500_000,
        ge=1000,
        le=5_000_000,
        description="Text kept per version for search; the rest of a longer text is cut off.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A TOML file's values come in as init arguments, minus those the environment sets
        # (`installation.locate`), so that a relative data_dir in it can be resolved against
        # its folder.
        return (init_settings, env_settings)

    @field_validator(
        "webhook_retry_schedule", "webhook_allowed_networks", "trusted_proxies", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # Lists come from the environment as `a,b,c` (a TOML file gives a real list).
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("webhook_allowed_networks", "trusted_proxies")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"{network!r} is not an address or network such as 10.0.0.5 or 10.0.0.0/8"
                ) from exc
        return networks

    @field_validator("database_url")
    @classmethod
    def _use_async_drivers(cls, url: str) -> str:
        # Accept the URLs people paste from their hosting panel; the engine needs async drivers.
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                url = "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite:///"):
            url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        if url and not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
            raise ValueError(
                "must be empty (SQLite in the data folder), postgresql://user@host:port/database "
                "or sqlite:///path/to/file.db"
            )
        if url:
            try:
                make_url(url)
            except ArgumentError:  # its message quotes the URL, password and all
                raise ValueError("is not a valid URL") from None
            except ValueError as exc:  # a port that is no number
                raise ValueError(f"is not a valid URL ({exc})") from None
            if _port_of(url) == 0:  # make_url takes any number; a socket takes 1 to 65535
                raise ValueError("names port 0, where no database listens")
        return url

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: str) -> str:
        # Checked here, so that a typo is one line at start-up rather than a traceback from
        # the server's start or from every request.
        if not url:
            return url
        scheme = url.partition("://")[0]
        if scheme not in _REDIS_SCHEMES:
            raise ValueError(
                "must be empty or a Redis URL: redis://host:port/db, rediss:// (TLS), "
                "redis+unix://, redis+sentinel://, redis+cluster:// (or valkey…)"
            )
        if _port_of(url) == 0:
            raise ValueError("names port 0, where no Redis listens")
        return url

    @model_validator(mode="after")
    def _check_blob_store(self) -> Settings:
        if self.blob_store and self.s3_location is None:
            raise ValueError(
                "CASEFOLIO_BLOB_STORE must be empty (local folder) or s3://bucket/prefix"
            )
        return self

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_s3_endpoint(cls, url: str) -> str:
        if not url:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or _port_of(url) == 0:
            raise ValueError(
                "must be empty (AWS) or an http:// or https:// URL such as https://s3.internal:9000"
            )
        return url

    @property
    def s3_location(self) -> tuple[str, str] | None:
        """The bucket and key prefix of an `s3://bucket/prefix` blob store; None for the
        local folder, or a value that names no bucket."""
        url = urlsplit(self.blob_store)
        if url.scheme != "s3" or not url.netloc:
            return None
        return url.netloc, url.path.strip("/")

    @property
    def effective_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    @property
    def webhook_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """`webhook_allowed_networks` as networks (each was checked at start-up): what the
        API, the web pages and the worker hand to outbound/ssrf.py."""
        return [ipaddress.ip_network(n, strict=False) for n in self.webhook_allowed_networks]

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """`trusted_proxies` as networks (an address is a network of one)."""
        return [ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies]

    @property
    def webhook_secret_overlap(self) -> timedelta:
        """How long a rotated-out webhook secret still signs (the API's and the pages')."""
        return timedelta(hours=self.webhook_secret_overlap_hours)

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / BLOB_FOLDER

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, or None on PostgreSQL."""
        url = self.effective_database_url
        if not url.startswith("sqlite"):
            return None
        path = url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)


def _port_of(url: str) -> int | None:
    """The port `url` names, if any; ValueError when it is not a number up to 65535."""
    try:
        return urlsplit(url).port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None

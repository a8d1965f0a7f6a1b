"""Settings: environment variables prefixed ``CASEFOLIO_`` and an optional TOML file, read once."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path("casefolio-data")


class Settings(BaseSettings):
    """Everything casefolio can be configured with; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CASEFOLIO_", extra="forbid", frozen=True)

    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="Folder for the SQLite file and local blobs."
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
    redis_url: str = Field("", description="Redis URL for shared rate-limit counters.")
    rate_limit_per_minute: int = Field(50, ge=1, description="Default requests/minute per token.")
    max_upload_bytes: int = Field(
        10 * 1024**3, ge=1, description="Largest accepted upload, in bytes."
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
        description="How long a SQLite write waits for another process's write lock (then 503).",
    )
    migrate_on_start: bool = Field(True, description="Apply pending migrations on `serve`.")
    log_level: str = Field("info", description="Log level of the server.")
    # Outbound (outbound/): change feed, webhooks, worker.
    changes_retention_days: float = Field(
        90, gt=0, description="Days the change feed keeps; an older cursor answers 410."
    )
    worker_in_server: bool = Field(
        True, description="Run the webhook worker inside each `casefolio serve` process."
    )
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
        min_length=1,
        description="Seconds before each delivery attempt (jittered by up to 10%).",
    )
    webhook_timeout_seconds: float = Field(15, gt=0, le=300, description="Per attempt.")
    webhook_failing_after: int = Field(
        5, ge=1, description="Consecutive failed attempts that mark an endpoint failing."
    )
    webhook_secret_overlap_hours: float = Field(
        24, ge=0, description="How long a rotated-out webhook secret still signs."
    )
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        [],
        description="Networks webhook URLs may resolve into although private, loopback or "
        "link-local (e.g. 10.0.0.0/8); everything else of that kind is refused.",
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
        # The TOML file is optional and named by CASEFOLIO_CONFIG; environment wins over it.
        toml_path = os.environ.get("CASEFOLIO_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @field_validator("webhook_retry_schedule", "webhook_allowed_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # Lists come from the environment as `a,b,c` (a TOML file gives a real list).
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not a network such as 10.0.0.0/8") from exc
        return networks

    @field_validator("database_url")
    @classmethod
    def _use_async_drivers(cls, url: str) -> str:
        # Accept the URLs people paste from their hosting panel; the engine needs async drivers.
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @model_validator(mode="after")
    def _check_blob_store(self) -> Settings:
        if self.blob_store and not self.blob_store.startswith("s3://"):
            raise ValueError(
                "CASEFOLIO_BLOB_STORE must be empty (local folder) or s3://bucket/prefix"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'casefolio.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

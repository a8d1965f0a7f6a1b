from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from casefolio.config import Settings

ROOT = Path(__file__).parents[1]


def test_every_setting_is_documented_in_readme_and_configuration_doc() -> None:
    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        key = f"CASEFOLIO_{name.upper()}"
        assert key in readme, f"{key} missing from the README configuration table"
        assert f"{{#{key}}}" in reference, f"{key} missing from docs/configuration.md"


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "casefolio.toml"
    config.write_text("rate_limit_per_minute = 120\nport = 9000\n")
    monkeypatch.setenv("CASEFOLIO_CONFIG", str(config))
    monkeypatch.setenv("CASEFOLIO_PORT", "9100")
    settings = Settings()
    assert settings.rate_limit_per_minute == 120
    assert settings.port == 9100


def test_postgres_urls_are_given_the_async_driver() -> None:
    settings = Settings(database_url="postgres://u@h/db")
    assert settings.effective_database_url == "postgresql+asyncpg://u@h/db"
    assert not settings.is_sqlite


def test_bad_configuration_fails_at_start() -> None:
    with pytest.raises(ValidationError, match=r"s3://bucket/prefix"):
        Settings(blob_store="ftp://nope")
    with pytest.raises(ValidationError):
        Settings(rate_limit_per_minute=0)

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from casefolio.config import Settings
from casefolio.installation import ConfigurationError, locate

ROOT = Path(__file__).parents[1]


def test_every_setting_is_documented_in_readme_and_configuration_doc() -> None:
    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        key = f"CASEFOLIO_{name.upper()}"
        assert key in readme, f"{key} missing from the README configuration table"
        assert f"{{#{key}}}" in reference, f"{key} missing from docs/configuration.md"


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No CASEFOLIO_* variables, and a per-user data folder under tmp_path (returned)."""
    for key in list(os.environ):
        if key.upper().startswith("CASEFOLIO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "casefolio"


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text("rate_limit_per_minute = 120\nport = 9000\n")
    monkeypatch.setenv("CASEFOLIO_CONFIG", str(config))
    monkeypatch.setenv("CASEFOLIO_PORT", "9100")
    found = locate(cwd=tmp_path)
    assert found.settings.rate_limit_per_minute == 120
    assert found.settings.port == 9100
    assert found.settings.data_dir == tmp_path / "casefolio-data"
    assert found.found_by == str(config)


def test_without_anything_set_every_folder_finds_the_per_user_installation(
    tmp_path: Path, clean_env: Path
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert locate(cwd=tmp_path).settings.data_dir == clean_env
    found = locate(cwd=tmp_path / "a" / "b")
    assert found.settings.data_dir == clean_env
    assert found.found_by == "the per-user default"


def test_a_casefolio_toml_above_the_current_folder_is_found_and_its_data_dir_is_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    deep = tmp_path / "matters" / "smith" / "pleadings"
    deep.mkdir(parents=True)
    config = tmp_path / "matters" / "casefolio.toml"
    config.write_text('data_dir = "store"\nport = 9001\n')
    found = locate(cwd=deep)
    assert found.settings.data_dir == tmp_path / "matters" / "store"
    assert found.settings.port == 9001
    assert found.found_by == str(config)

    config.write_text("port = 9001\n")
    assert locate(cwd=deep).settings.data_dir == tmp_path / "matters" / "casefolio-data"

    monkeypatch.setenv("CASEFOLIO_DATA_DIR", str(tmp_path / "explicit"))
    found = locate(cwd=deep)
    assert found.settings.data_dir == tmp_path / "explicit"
    assert found.settings.port == 9001
    assert found.found_by == "CASEFOLIO_DATA_DIR"


def _refusal(monkeypatch: pytest.MonkeyPatch, cwd: Path, variable: str, value: str) -> str:
    """The configuration error an installation gives with `variable` set to `value`."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        locate(cwd=cwd)
    return str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CASEFOLIO_PORT", "99999", "CASEFOLIO_PORT: Input should be less than or equal to 65535"),
        ("CASEFOLIO_PORT", "abc", "CASEFOLIO_PORT: Input should be a valid integer"),
        ("CASEFOLIO_BLOB_STORE", "ftp://x", "CASEFOLIO_BLOB_STORE must be empty"),
        ("CASEFOLIO_SERVER", "apache", "CASEFOLIO_SERVER: Input should be 'uvicorn' or 'granian'"),
        ("CASEFOLIO_REDIS_URL", "memcached://cache:11211", "CASEFOLIO_REDIS_URL: must be empty or"),
        ("CASEFOLIO_REDIS_URL", "redis://cache:abc/0", "CASEFOLIO_REDIS_URL: is not a valid URL"),
        ("CASEFOLIO_REDIS_URL", "redis://cache:0/0", "CASEFOLIO_REDIS_URL: names port 0"),
        ("CASEFOLIO_TRUSTED_PROXIES", "10.0.0.5,lb", "CASEFOLIO_TRUSTED_PROXIES: 'lb' is not an"),
        ("CASEFOLIO_BLOB_STORE", "s3://", "CASEFOLIO_BLOB_STORE must be empty"),
        ("CASEFOLIO_S3_ENDPOINT_URL", "s3.internal:9000", "CASEFOLIO_S3_ENDPOINT_URL: must be"),
        ("CASEFOLIO_DATABASE_URL", "mysql://u@db/cases", "CASEFOLIO_DATABASE_URL: must be empty"),
        ("CASEFOLIO_DATABASE_URL", "postgres://u@db:x/c", "CASEFOLIO_DATABASE_URL: is not a valid"),
        ("CASEFOLIO_DATABASE_URL", "postgres://u@db:70000/c", "CASEFOLIO_DATABASE_URL: is not a"),
        ("CASEFOLIO_DATABASE_URL", "postgres://u@db:0/c", "CASEFOLIO_DATABASE_URL: names port 0"),
        # Durations past what a date can hold: every background round failed on them.
        ("CASEFOLIO_TRASH_DAYS", "1e999", "CASEFOLIO_TRASH_DAYS: Input should be a finite"),
        ("CASEFOLIO_CHANGES_RETENTION_DAYS", "1e300", "CASEFOLIO_CHANGES_RETENTION_DAYS: Input"),
        ("CASEFOLIO_SESSION_MAX_HOURS", "inf", "CASEFOLIO_SESSION_MAX_HOURS: Input should be a"),
        ("CASEFOLIO_WEBHOOK_RETRY_SCHEDULE", "0,1e300", "CASEFOLIO_WEBHOOK_RETRY_SCHEDULE: Input"),
        ("CASEFOLIO_WEBHOOK_RETRY_SCHEDULE", "0,-5", "CASEFOLIO_WEBHOOK_RETRY_SCHEDULE: Input"),
        ("CASEFOLIO_LOG_LEVEL", "bogus", "CASEFOLIO_LOG_LEVEL: Input should be 'critical'"),
        ("CASEFOLIO_DATA_DIR", "", "CASEFOLIO_DATA_DIR is set but empty"),
    ],
)
def test_configuration_errors_name_the_variable_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: Path,
    variable: str,
    value: str,
    expected: str,
) -> None:
    message = _refusal(monkeypatch, tmp_path, variable, value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert "pydantic" not in message
    assert "errors.pydantic.dev" not in message


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        (
            "CASEFOLIO_REDIS_URL",
            "redis://app:s3cr@t@cache:99999/0",
            "redis://app:***@cache:99999/0",
        ),
        (
            "CASEFOLIO_DATABASE_URL",
            "postgresql://u:s3cr@t@db:port/c",
            "postgresql://u:***@db:port/c",
        ),
        (
            "CASEFOLIO_S3_ENDPOINT_URL",
            "ftp://key:s3cr@t@s3.internal/",
            "ftp://key:***@s3.internal/",
        ),
    ],
)
def test_configuration_errors_do_not_repeat_a_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: Path,
    variable: str,
    value: str,
    shown: str,
) -> None:
    # The message goes to terminals and service logs; the password stays in the settings.
    message = _refusal(monkeypatch, tmp_path, variable, value)
    assert f"(got {shown!r})" in message
    assert "s3cr" not in message


def test_errors_in_a_toml_file_name_the_file_and_key(tmp_path: Path, clean_env: Path) -> None:
    config = tmp_path / "casefolio.toml"
    config.write_text("prot = 80\nport = -1\n")
    with pytest.raises(ConfigurationError) as raised:
        locate(cwd=tmp_path)
    assert str(raised.value) == (
        f"`port` in {config}: Input should be greater than or equal to 0 (got -1); "
        f"unknown setting `prot` in {config}"
    )
    config.write_text("port = [")
    with pytest.raises(ConfigurationError, match=r"cannot read .*casefolio\.toml"):
        locate(cwd=tmp_path)
    config.write_bytes(b"\xff\xfe port = 80\n")  # not UTF-8
    with pytest.raises(ConfigurationError, match=r"cannot read .*casefolio\.toml"):
        locate(cwd=tmp_path)
    config.write_text("data_dir = 5\n")
    with pytest.raises(ConfigurationError, match=r"data_dir is a path, written as a string"):
        locate(cwd=tmp_path)


def test_postgres_urls_are_given_the_async_driver() -> None:
    settings = Settings(database_url="postgres://u@h/db")
    assert settings.effective_database_url == "postgresql+asyncpg://u@h/db"
    assert not settings.is_sqlite


def test_bad_configuration_fails_at_start() -> None:
    with pytest.raises(ValidationError, match=r"s3://bucket/prefix"):
        Settings(blob_store="ftp://nope")
    with pytest.raises(ValidationError):
        Settings(rate_limit_per_minute=0)

"""Which installation a command or server process belongs to: its data folder and settings,
found from the environment, a `casefolio.toml` and the per-user default; and the one-line
error a person reads when those settings cannot be used."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from casefolio.config import Settings

CONFIG_FILE = "casefolio.toml"
# The folder a casefolio.toml's installation keeps its data in, next to the file.
DATA_FOLDER = "casefolio-data"


class ConfigurationError(Exception):
    """Settings that cannot be used; the message is one line naming the variable or key."""


@dataclass(frozen=True)
class Installation:
    """Settings, and how their installation was found (shown to people who ask where)."""

    settings: Settings
    found_by: str


def locate(cwd: Path | None = None) -> Installation:
    """Given the current folder (and the environment), return the installation every command
    and server process uses.

    The data folder is, first found: `CASEFOLIO_DATA_DIR`; the TOML file named by
    `CASEFOLIO_CONFIG`, or else a `casefolio.toml` in the current folder or one above it
    (its `data_dir`, relative to the file, or `casefolio-data` next to it); the per-user
    default. Other keys come from the environment, then the file.
    """
    environ = os.environ
    cwd = Path.cwd() if cwd is None else cwd
    set_by_env = {
        key.upper()
        for key in environ
        if key.upper().startswith("CASEFOLIO_") and key.upper() != "CASEFOLIO_CONFIG"
    }
    if environ.get("CASEFOLIO_DATA_DIR", None) == "":
        # Path("") is the current folder: an installation wherever the command happens to run.
        raise ConfigurationError(
            "CASEFOLIO_DATA_DIR is set but empty: name the data folder, or unset it."
        )
    config_file = _config_file(environ, cwd)
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as f:
                values = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read {config_file}: {exc}") from exc
        if not isinstance(values.get("data_dir", ""), str):
            raise ConfigurationError(
                f"{config_file}: data_dir is a path, written as a string in quotes "
                f"(got {values['data_dir']!r})."
            )
        values = {k: v for k, v in values.items() if f"CASEFOLIO_{k.upper()}" not in set_by_env}
    if "CASEFOLIO_DATA_DIR" in set_by_env:
        found_by = "CASEFOLIO_DATA_DIR"
    elif config_file is not None:
        values["data_dir"] = config_file.parent / str(values.get("data_dir", DATA_FOLDER))
        found_by = str(config_file)
    else:
        found_by = "the per-user default"
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigurationError(describe(exc, from_file=config_file, file_keys=values)) from exc
    return Installation(settings, found_by)


def _config_file(environ: Mapping[str, str], cwd: Path) -> Path | None:
    named = environ.get("CASEFOLIO_CONFIG")
    if named:
        return Path(named).absolute()
    for folder in (cwd, *cwd.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
    return None


def _shown(value: object) -> str:
    """`value` as an error message quotes it, a URL's password masked: the message goes to
    terminals and service logs that more people read than the configuration."""
    if isinstance(value, str) and "@" in value and "://" in value:
        scheme, _, rest = value.partition("://")
        credentials, at, host = rest.rpartition("@")
        if ":" in credentials and "/" not in credentials:
            user = credentials.partition(":")[0]
            value = f"{scheme}://{user}:***{at}{host}"
    return repr(value)


def describe(
    exc: ValidationError, *, from_file: Path | None = None, file_keys: Collection[str] = ()
) -> str:
    """Given a settings validation error, return one line naming each variable (or the key in
    the TOML file) with what is wrong, without pydantic's field names and URLs."""
    problems = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting `{name}` in {from_file}")
        elif name in file_keys and from_file is not None:
            problems.append(f"`{name}` in {from_file}: {message} (got {_shown(error['input'])})")
        elif name:
            problems.append(f"CASEFOLIO_{name.upper()}: {message} (got {_shown(error['input'])})")
        else:
            problems.append(message)
    return "; ".join(problems)

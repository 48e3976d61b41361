"""Finding, reading and validating the TOML file; readable errors; the redacted view.

Every problem becomes a ConfigError with one "field.path: message" line per problem, and
never shows the offending value (it may be a secret).
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from supervisor.config.environment import unknown_settings
from supervisor.config.settings import Settings
from supervisor.constants import CONFIG_ENV, CONFIG_PATHS
from supervisor.errors import ConfigError
from supervisor.secrets import mask_urls

# 16 MiB: the largest example profile is under 10 KiB, but a tick_freshness watchdog over
# 100,000 instruments lists them all (~1.3 MB with 7-character names, more with real ones).
MAX_CONFIG_BYTES = 16 << 20


def find_config(explicit: str | None) -> Path:
    """--config, then $SUPERVISOR_CONFIG, then the system path, then ./config/."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    for candidate in CONFIG_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    return Path(CONFIG_PATHS[0])


def load_config(path: Path) -> Settings:
    """Read, parse and validate; every problem becomes a ConfigError naming its field."""
    try:
        data = tomllib.loads(read_config_text(path))
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror}"], str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(["not valid TOML: nested too deeply"], str(path)) from None
    problems = unknown_settings(os.environ)
    if problems:
        raise ConfigError(problems, str(path))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, data), str(path)) from None
    except SettingsError as exc:  # an environment override that is not valid JSON
        raise ConfigError([f"environment: {exc}"], str(path)) from None


def read_config_text(path: Path) -> str:
    """The file's text, if it is a regular file of at most MAX_CONFIG_BYTES. Anything else
    would hang or exhaust memory (`--config /dev/zero` read forever); a FIFO is opened
    without blocking so that it is refused rather than waited on."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError([f"not a regular file ({_file_type(mode)})"], str(path))
        file = os.fdopen(descriptor, "rb")  # owns the descriptor from here
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        data = file.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        limit = f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config file"
        raise ConfigError([limit], str(path))
    return data.decode("utf-8")


def _file_type(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a pipe",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def describe_errors(exc: ValidationError, data: dict[str, Any] | None = None) -> list[str]:
    """One line per problem, "field.path: message"; never the offending value (may be secret)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        path = _field_path(error["loc"], data or {})
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _field_path(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """("watchdogs", 1, "tick_freshness", "breach") -> "watchdogs[1] (spx_ticks).breach"."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] in ("watchdogs", "actuators"):
        del parts[2]  # pydantic's discriminator tag: not a key the user wrote
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if len(parts) > 1 and parts[0] == "watchdogs" and isinstance(parts[1], int):
        name = _watchdog_name(data, parts[1])
        path = path.replace(f"[{parts[1]}]", f"[{parts[1]}] ({name})", 1) if name else path
    return path


def _watchdog_name(data: dict[str, Any], index: int) -> str | None:
    watchdogs = data.get("watchdogs")
    if (
        isinstance(watchdogs, list)
        and index < len(watchdogs)
        and isinstance(watchdogs[index], dict)
    ):
        name = watchdogs[index].get("name")
        return name if isinstance(name, str) else None
    return None


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective config as plain data, secrets masked, for `config show`."""
    data: dict[str, Any] = _mask_urls(settings.model_dump(mode="json", by_alias=True))
    return data


def _mask_urls(node: Any) -> Any:
    """A URL with credentials may sit in any string (a `url`, a command's argv): mask them."""
    if isinstance(node, dict):
        return {k: _mask_urls(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask_urls(item) for item in node]
    if isinstance(node, str):
        return mask_urls(node)
    return node


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the TOML file, as written (durations as "15s" or seconds, the keys
    users write rather than the `*_s` field names). Every constraint JSON Schema can say is
    in it (docs/configuration.md, "What the JSON Schema checks"); the loader's checks stay
    the whole rule."""
    schema = by_kind(Settings.model_json_schema(by_alias=True, mode="validation"))
    schema["properties"]["watchdogs"]["minItems"] = 1  # settings.NO_WATCHDOGS
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "trading-supervisor configuration",
        **schema,
        "required": ["watchdogs"],
    }


def by_kind(node: Any) -> Any:
    """pydantic's discriminated unions (`oneOf` with OpenAPI's `discriminator`, which JSON
    Schema validators ignore) as one `if kind == K then <K's schema>` per kind: a validator
    then reports a bad field at its own path, not "not valid under any of the schemas" for
    the whole watchdog."""
    if isinstance(node, list):
        return [by_kind(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "discriminator" not in node:
        return {key: by_kind(value) for key, value in node.items()}
    tag = node["discriminator"]["propertyName"]
    mapping = node["discriminator"]["mapping"]
    return {
        "type": "object",
        "required": [tag],
        "properties": {tag: {"enum": sorted(mapping)}},
        "allOf": [
            {"if": {"required": [tag], "properties": {tag: {"const": kind}}}, "then": {"$ref": ref}}
            for kind, ref in sorted(mapping.items())
        ],
    }

"""The config loader fed arbitrary TOML documents built from the schema's own keys: the result
is a Settings (which then builds, as `config validate` and `run` build it) or a ConfigError
naming fields, never any other exception.

Documents are written as TOML text and loaded from a file, the way `run` reads them. Each key
gets either a value seen in the example profiles (so that documents get past the first
checks and deep into validation) or an arbitrary TOML value: strings with control
characters, unbounded integers, NaN and infinities, dates, times, date-times, arrays and
inline tables.
"""

from __future__ import annotations

import copy
import math
import os
import tomllib
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from supervisor.config.loading import load_config, redacted
from supervisor.config.sections import (
    HaSection,
    MetricsSection,
    PostgresSection,
    RedisSection,
    SessionConfig,
    SupervisorSection,
)
from supervisor.config.settings import Settings
from supervisor.errors import ConfigError
from supervisor.kinds import ACTUATOR_KINDS, DEADMAN_KIND, WATCHDOG_KINDS
from supervisor.protection import build_protection
from supervisor.sources.clients import close_clients, open_clients

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
SECTIONS: dict[str, type[BaseModel]] = {
    "supervisor": SupervisorSection,
    "redis": RedisSection,
    "postgres": PostgresSection,
    "metrics": MetricsSection,
    "ha": HaSection,
}
WATCHDOG_CONFIGS = {kind.name: kind.config for kind in WATCHDOG_KINDS}
ACTUATOR_CONFIGS = {kind.name: kind.config for kind in (*ACTUATOR_KINDS, DEADMAN_KIND)}


def keys_of(model: type[BaseModel]) -> list[str]:
    """The keys a user writes: each field's alias, or its name."""
    return sorted(field.alias or name for name, field in model.model_fields.items())


PROFILES = [
    tomllib.loads(path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES.glob("*.toml"))
]
EXAMPLE_WATCHDOGS = [watchdog for profile in PROFILES for watchdog in profile["watchdogs"]]
SCALARS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),  # control characters too
    st.sampled_from(["15s", "250ms", "0.0001ms", "1e12", "nan", "-1s", "09:30", "127.0.0.1:99999"]),
    st.sampled_from(["http://h:99999/", "redis://h:0/0", "ticks:SPX ", "America/Nowhere", "mon"]),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.times(),
    st.datetimes(timezones=st.none() | st.just(datetime.now().astimezone().tzinfo)),
)
ARBITRARY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "ts", "x y", ""]), inner, max_size=3)
    ),
    max_leaves=6,
)


def model_of(where: str, table: dict[str, Any]) -> type[BaseModel] | None:
    """The schema of the table at `where` ("redis", "sessions", "watchdogs", "actuators")."""
    if where in SECTIONS:
        return SECTIONS[where]
    if where == "sessions":
        return SessionConfig
    kinds = WATCHDOG_CONFIGS if where == "watchdogs" else ACTUATOR_CONFIGS
    kind = table.get("kind")
    return kinds.get(kind) if isinstance(kind, str) else None


def tables_of(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every table of a document with the schema it is validated against."""
    found = [(name, document.setdefault(name, {})) for name in SECTIONS]
    found += [("sessions", t) for t in document.get("sessions", {}).values()]
    found += [("actuators", t) for t in document.get("actuators", {}).values()]
    found += [("watchdogs", t) for t in document.get("watchdogs", [])]
    return found


@st.composite
def mutate(draw: st.DrawFn, document: dict[str, Any]) -> None:
    """One change anywhere: a key set to anything, a key dropped, or an unknown key."""
    where, table = draw(st.sampled_from(tables_of(document)))
    model = model_of(where, table)
    keys = keys_of(model) if model is not None else ["kind"]
    change = draw(st.sampled_from(["set", "set", "set", "drop", "bogus"]))
    if change == "set":
        table[draw(st.sampled_from(keys))] = draw(ARBITRARY)
    elif change == "drop" and table:
        del table[draw(st.sampled_from(sorted(table)))]
    elif change == "bogus":
        table["bogus_key"] = draw(ARBITRARY)


@st.composite
def documents(draw: st.DrawFn, most_changes: int) -> dict[str, Any]:
    """An example profile's sections, sessions and actuators with 1-3 watchdogs taken from
    it (so that references resolve) or from any profile, then up to `most_changes` changes."""
    document: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(PROFILES)))
    pool = draw(st.sampled_from([document["watchdogs"], document["watchdogs"], EXAMPLE_WATCHDOGS]))
    watchdogs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    document["watchdogs"] = [{**w, "name": f"w{i}"} for i, w in enumerate(copy.deepcopy(watchdogs))]
    for _ in range(draw(st.integers(0, most_changes))):
        draw(mutate(document))
    if most_changes and not draw(st.integers(0, 9)):
        document.pop(draw(st.sampled_from(sorted(document))))  # a whole part missing
    return document


# Mostly one or two changes to a working profile: what reaches the checks behind the first
# ones. Sometimes many.
DOCUMENTS = st.sampled_from([0, 1, 1, 2, 8]).flatmap(documents)


# --- a small TOML writer (the standard library only reads TOML) ----------------------------


def toml_key(key: str) -> str:
    return toml_string(key)


def toml_string(text: str) -> str:
    escaped = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else ("\\" + c if c in '"\\' else c)
        for c in text
    )
    return f'"{escaped}"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    pairs = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
    return "{ " + pairs + " }"


def toml_table(header: str, data: dict[str, Any]) -> str:
    lines = [header] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items()]
    return "\n".join(lines)


def toml_document(document: dict[str, Any]) -> str:
    parts = []
    for name in SECTIONS:
        if name in document:
            parts.append(toml_table(f"[{name}]", document[name]))
    for group in ("sessions", "actuators"):
        for name, data in document.get(group, {}).items():
            parts.append(toml_table(f"[{group}.{toml_key(name)}]", data))
    for data in document.get("watchdogs", []):
        parts.append(toml_table("[[watchdogs]]", data))
    return "\n\n".join(parts) + "\n"


# --- the property ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SUPERVISOR_")}
    yield tmp_path_factory.mktemp("fuzz") / "supervisor.toml"
    os.environ.update(saved)


async def build_and_close(loaded: Settings) -> None:
    clients = open_clients(loaded.redis, loaded.postgres, "config-fuzz")
    try:
        build_protection(loaded, clients)
    except ConfigError:  # an unmet need (a SQL watchdog without [postgres] dsn)
        pass
    finally:
        await close_clients(clients)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document=DOCUMENTS)
def test_any_document_is_settings_or_a_config_error(
    config_file: Path, document: dict[str, Any]
) -> None:
    text = toml_document(document)
    config_file.write_text(text, encoding="utf-8")
    tomllib.loads(text)  # our writer wrote valid TOML (else: a bug in this test)
    try:
        loaded = load_config(config_file)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        event("refused")
        return
    event("loaded")
    assert loaded.watchdogs  # a config that loads watches something
    redacted(loaded)  # `config show`
    anyio.run(build_and_close, loaded)  # `config validate` and `run` build exactly this

"""The kind registry (supervisor/kinds.py) and everything derived from it agree: the config
unions Settings validates against, the kind modules' declarations, the example profiles,
the gauges Metrics registers, and the docs (README.md and docs/*.md) that describe each kind
and each kind's gauge."""

from __future__ import annotations

import importlib
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from supervisor import kinds
from supervisor.actuators.base import Actuator, ActuatorKind, DeadmanKind
from supervisor.config.settings import Settings
from supervisor.declarations import Need, kind_name
from supervisor.publish.metrics import Metrics
from supervisor.watchdogs.base import Watchdog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.toml"))
KIND_MODULES = sorted(
    f"supervisor.{path.parent.name}.{path.stem}"
    for folder in ("watchdogs", "actuators")
    for path in (ROOT / "supervisor" / folder).glob("*.py")
    if path.stem != "__init__"
)
ACTUATOR_DECLARATIONS: tuple[ActuatorKind[Any] | DeadmanKind, ...] = (  # all of [actuators]
    *kinds.ACTUATOR_KINDS,
    kinds.DEADMAN_KIND,
)
# Wherever the user docs are split, a kind is documented by a heading of its own in the
# configuration reference: "### `kind = \"tick_freshness\"`".
DOCS = "\n".join(
    path.read_text(encoding="utf-8")
    for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
)
KIND_HEADING = re.compile(r'^#{1,6} .*`kind = "([A-Za-z0-9_]+)"`', re.MULTILINE)


def union_members(field: str) -> tuple[type, ...]:
    """The config classes Settings accepts in `field` (list or dict values)."""
    item = get_args(Settings.model_fields[field].annotation)[-1]  # Annotated[A | B, Field]
    union = get_args(item)[0]
    return get_args(union)


def literal_of(config: type[BaseModel]) -> tuple[Any, ...]:
    annotation = config.model_fields["kind"].annotation
    assert get_origin(annotation) is Literal, f"{config.__name__}.kind is not a Literal"
    return get_args(annotation)


def test_each_name_is_the_literal_of_its_config_class() -> None:
    for kind in (*kinds.WATCHDOG_KINDS, *ACTUATOR_DECLARATIONS):
        assert literal_of(kind.config) == (kind.name,)


def test_names_are_unique() -> None:
    watchdogs = [kind.name for kind in kinds.WATCHDOG_KINDS]
    actuators = [kind.name for kind in ACTUATOR_DECLARATIONS]
    assert len(set(watchdogs)) == len(watchdogs)
    assert len(set(actuators)) == len(actuators)


def test_the_config_unions_are_exactly_the_registered_config_classes() -> None:
    assert union_members("watchdogs") == tuple(kind.config for kind in kinds.WATCHDOG_KINDS)
    assert union_members("actuators") == tuple(kind.config for kind in ACTUATOR_DECLARATIONS)


def test_the_deadman_is_not_an_action() -> None:
    assert kinds.DEADMAN_KIND.name == "deadman"
    assert "deadman" not in [kind.name for kind in kinds.ACTUATOR_KINDS]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_kind_in_the_example_profiles_is_registered(path: Path) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    watchdogs = {kind.name for kind in kinds.WATCHDOG_KINDS}
    actuators = {kind.name for kind in ACTUATOR_DECLARATIONS}
    assert {w["kind"] for w in data.get("watchdogs", [])} <= watchdogs
    assert {a["kind"] for a in data.get("actuators", {}).values()} <= actuators


@pytest.mark.parametrize("module_name", KIND_MODULES)
def test_a_kind_module_is_registered_by_its_declaration(module_name: str) -> None:
    """A module's KIND counts only once supervisor/kinds.py lists it; a module implementing a
    watchdog or an actuator without a KIND would never be built."""
    module = importlib.import_module(module_name)
    declaration = getattr(module, "KIND", None)
    implements = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and value.__module__ == module_name
        and issubclass(value, Watchdog | Actuator)
        and not inspect.isabstract(value)
    ]
    if declaration is None:
        assert implements == [], f"{module_name} implements {implements} but has no KIND"
        return
    registered = (*kinds.WATCHDOG_KINDS, *ACTUATOR_DECLARATIONS)
    assert any(declaration is kind for kind in registered), f"{module_name}.KIND is not listed"


def test_the_registered_gauges_are_what_metrics_registers() -> None:
    def names(metrics: Metrics) -> set[str]:
        return {metric.name for metric in metrics.registry.collect()}

    gauges = kinds.kind_gauges()
    plain = names(Metrics(CollectorRegistry(), kind_gauges={}))
    full = Metrics(CollectorRegistry(), kind_gauges=gauges)
    assert names(full) - plain == {gauge.name for gauge in gauges.values()}
    assert full.kind_gauges == gauges


@pytest.mark.parametrize("name", sorted(kinds.kind_gauges()))
def test_a_kind_gauge_is_documented(name: str) -> None:
    """Dashboards and alerts are written from the docs ("What it publishes")."""
    gauge = kinds.kind_gauges()[name].name
    assert f"`{gauge}" in DOCS, f"{name}'s gauge {gauge} is in no README.md or docs/ page"


def test_every_registered_kind_is_documented_and_only_those() -> None:
    documented = KIND_HEADING.findall(DOCS)
    registered = [kind.name for kind in (*kinds.WATCHDOG_KINDS, *ACTUATOR_DECLARATIONS)]
    missing = [name for name in registered if name not in documented]
    assert missing == [], f'kinds with no `kind = "..."` heading in README.md or docs/: {missing}'
    assert set(documented) <= set(registered), "a documented kind that is not registered"


def test_the_overview_lists_every_kind_in_the_registry_order() -> None:
    """README.md's "This version runs every watchdog kind (...) and every actuator kind
    (...)" names each registered kind, so a new kind is never left out of the front page."""
    text = " ".join(DOCS.split())
    for family, declared in (
        ("watchdog", kinds.WATCHDOG_KINDS),
        ("actuator", ACTUATOR_DECLARATIONS),
    ):
        lists = re.findall(rf"every {family} kind \(([^)]*)\)", text)
        assert lists, f"no 'every {family} kind (...)' list in README.md or docs/"
        for listed in lists:
            assert re.findall(r"`([a-z0-9_]+)`", listed) == [kind.name for kind in declared]


def test_the_kind_headings_are_found() -> None:
    text = '### `kind = "lock_ttl"`\n\nnot a `kind = "margin"` heading\n#### A `kind = "x_y"`\n'
    assert KIND_HEADING.findall(text) == ["lock_ttl", "x_y"]


def test_only_watchdogs_need_postgres() -> None:
    """protection.unmet_needs checks watchdogs only: an action needing PostgreSQL would be
    built without it and fail at run time instead of at `config validate`."""
    assert all(Need.POSTGRES not in kind.needs for kind in ACTUATOR_DECLARATIONS)


def test_a_config_class_without_one_kind_literal_is_refused() -> None:
    class Loose(BaseModel):
        kind: str

    class Two(BaseModel):
        kind: Literal["a", "b"]

    for config in (Loose, Two):
        with pytest.raises(TypeError, match="must be annotated Literal"):
            kind_name(config)

"""Which SUPERVISOR_* environment variables are settings, and which are someone else's.

Settings are overridden by SUPERVISOR_<SECTION>__<KEY> (pydantic-settings' env_prefix and
env_nested_delimiter), or a whole section by SUPERVISOR_<SECTION> as JSON. Other programs
put SUPERVISOR_* variables into the environment too: supervisord sets SUPERVISOR_ENABLED,
SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME and SUPERVISOR_SERVER_URL in every program it
starts, and a deploy script may export SUPERVISOR_BIN. pydantic-settings ignores those, and
so must the check: only a name in the settings' own shape (with the double underscore) that
names no setting is refused, because that is a mistyped override that would be silently
ignored. Names are compared whatever their case, as pydantic-settings compares them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from pydantic import BaseModel

from supervisor.config.settings import Settings
from supervisor.constants import CONFIG_ENV

PREFIX = "SUPERVISOR_"
DELIMITER = "__"


class Kind(enum.Enum):
    SETTING = "a setting"
    UNKNOWN_SETTING = "in the settings' shape but names no setting"
    NOT_A_SETTING = "not in the settings' shape: someone else's, ignored"
    NOT_OURS = "without the prefix, or the config file's path"


def classify(name: str) -> Kind:
    lower = name.lower()  # exactly as pydantic-settings folds case (not .upper(): "ß")
    if not lower.startswith(PREFIX.lower()) or lower == CONFIG_ENV.lower():
        return Kind.NOT_OURS
    rest = lower.removeprefix(PREFIX.lower())
    if DELIMITER not in rest:
        return Kind.SETTING if rest in Settings.model_fields else Kind.NOT_A_SETTING
    section, key = rest.split(DELIMITER, 1)
    if section not in Settings.model_fields:
        return Kind.UNKNOWN_SETTING
    keys = _section_keys(section)
    if keys is not None and key.split(DELIMITER, 1)[0] not in keys:
        return Kind.UNKNOWN_SETTING
    return Kind.SETTING  # deeper levels ([actuators.NAME] ...) are checked by the model


def _section_keys(section: str) -> set[str] | None:
    """The keys a fixed section ([redis], ...) accepts: field names and the names written in
    the file (populate_by_name). None for the named tables and the list, whose keys are
    names the user chose."""
    annotation = Settings.model_fields[section].annotation
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return None
    fields = annotation.model_fields
    return set(fields) | {field.alias for field in fields.values() if field.alias}


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """One problem per variable in the settings' shape that names no setting (never its
    value: it may be a secret)."""
    sections = ", ".join(sorted(Settings.model_fields))
    return [
        f"environment {name}: not a setting; use SUPERVISOR_<SECTION>__<KEY> with a section"
        f" among {sections} and a key of that section"
        for name in sorted(environ)
        if classify(name) is Kind.UNKNOWN_SETTING
    ]


def ignored_variables(environ: Mapping[str, str]) -> list[str]:
    """The SUPERVISOR_* names that are not settings (supervisord's, a script's)."""
    return [name for name in sorted(environ) if classify(name) is Kind.NOT_A_SETTING]


def ignored_note(environ: Mapping[str, str]) -> str | None:
    """Said once at start: an override written with one underscore too few
    (SUPERVISOR_REDIS_URL) shows up here rather than nowhere. Names only, never values."""
    names = ignored_variables(environ)
    if not names:
        return None
    return (
        f"environment {', '.join(names)}: not SUPERVISOR_<SECTION>__<KEY>, so not settings; ignored"
    )

"""What tests/deploy needs to know about PromQL and the exposition format: the metric names a
query uses, and the metric names a scrape exports."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

# An identifier that is not a label name inside `{...}` or a label in `by (...)`: for our
# names that is enough, because every metric of ours starts with `supervisor_` and no label
# or function does.
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
LABEL_MATCHERS = re.compile(r"\{[^}]*\}")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",)}


def metric_names(expr: str) -> set[str]:
    """The `supervisor_*` metric names an expression selects: identifiers followed by `{`,
    `[` or standing alone, with label matchers and strings taken out first (a label value
    such as `outcome="failed"` or `le="0.5"` is not a metric)."""
    text = LABEL_MATCHERS.sub("{}", QUOTED.sub('""', expr))
    return {name for name in IDENTIFIER.findall(text) if name.startswith("supervisor_")}


def exported_names(exposition: str) -> set[str]:
    """Every series name a scrape can hold: the samples present, and for a family with no
    sample yet (a counter nothing has counted) the names its type gives it."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        suffixes = SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names

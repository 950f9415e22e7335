"""Prometheus' text exposition format (version 0.0.4), written by hand: a few gauges need no client
library in the web process. Pure: metric families in, text out.

https://prometheus.io/docs/instrumenting/exposition_formats/ — each family is a `# HELP` line, a
`# TYPE` line, then its samples; label values escape backslash, double quote and newline; HELP text
escapes backslash and newline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class MetricFamily:
    name: str
    help: str
    type: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(families: list[MetricFamily]) -> str:
    lines = []
    for family in families:
        if not _NAME.fullmatch(family.name):
            raise ValueError(f"{family.name!r} is not a valid metric name")
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            if labels:
                for key in labels:
                    if not _LABEL.fullmatch(key) or key.startswith("__"):
                        raise ValueError(f"{key!r} is not a valid label name")
                body = ",".join(f'{key}="{_escape_label(str(val))}"' for key, val in labels.items())
                lines.append(f"{family.name}{{{body}}} {format_value(value)}")
            else:
                lines.append(f"{family.name} {format_value(value)}")
    return "\n".join(lines) + "\n"

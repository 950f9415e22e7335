"""YAML loading shared by the engine: libyaml's safe loader when present (ten times faster), else PyYAML's."""

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

YAMLError = yaml.YAMLError


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document safely (no Python object tags)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python object tags

"""Drift between a template set's compose file and the canonical production compose file.

The check that would have caught the drift of §1: the compose template is rendered with a placeholder
context and compared, service by service, with the canonical file. Compared: services, image names,
environment keys, volumes, ports, profiles, healthchecks (presence and test), depends_on (with
conditions) and top-level named volumes. Values are compared as written, before interpolation, so
`${HTTP_PORT}:80` must match `${HTTP_PORT}:80`; environment *values* are not compared.

Image names are compared without tag or digest and without registry: the registry is the `registry`
prefix the template was rendered with when an image starts with it, otherwise a first path component
that Docker itself would take for a registry host (it has a `.` or a `:`, is `localhost`, or is a
`${VAR}`). `docker.io/library/` is dropped too. So `registry.example.org/campaign-api:${IMAGE_TAG:-v2}`
and `{{ registry }}/campaign-api:...` are the same image, `postgres` and `postgis/postgis` are not.
"""

from dataclasses import dataclass
from typing import Any

from ._yaml import YAMLError, load_yaml
from .context import PLACEHOLDER_REGISTRY, example_context
from .errors import ComposeFileError
from .render import render
from .sets import TemplateSet

_ONLY_CANONICAL = "only in the canonical file"
_ONLY_TEMPLATE = "only in the template"


@dataclass(frozen=True)
class DriftItem:
    service: str  # "" for a top-level difference
    aspect: str
    message: str

    def __str__(self) -> str:
        where = f"service {self.service}" if self.service else "top level"
        return f"{where}: {self.aspect}: {self.message}"


@dataclass(frozen=True)
class DriftReport:
    template: str
    canonical: str
    items: tuple[DriftItem, ...]

    @property
    def has_drift(self) -> bool:
        return bool(self.items)

    def format(self) -> str:
        if not self.items:
            return f"No drift: {self.template} matches {self.canonical}."
        lines = [f"{self.template} has drifted from {self.canonical} ({len(self.items)} difference(s)):"]
        lines += [f"  - {item}" for item in self.items]
        return "\n".join(lines)


def check_drift(
    template_set: TemplateSet,
    canonical_text: str,
    *,
    registry: str = PLACEHOLDER_REGISTRY,
    canonical_label: str = "the canonical compose file",
) -> DriftReport:
    """Render the set's compose template with placeholders and compare it with `canonical_text`.

    Pass the fleet's registry as `registry` when it includes a namespace (`registry.example.org/acme`),
    so that prefix is stripped from both sides.
    """
    context = example_context(template_set, registry=registry)
    compose = render(template_set, context, include_env=False)[template_set.compose_file]
    source = next(f.source for f in template_set.files if f.path == template_set.compose_file)
    return compare_compose(
        compose.content.decode("utf-8"),
        canonical_text,
        registry=registry,
        template_label=f"template {template_set.name}/{source}",
        canonical_label=canonical_label,
    )


def compare_compose(
    template_text: str,
    canonical_text: str,
    *,
    registry: str = "",
    template_label: str = "the template",
    canonical_label: str = "the canonical compose file",
) -> DriftReport:
    """Compare two compose texts (already free of Jinja) as described in the module docstring."""
    template, canonical = _load(template_text, template_label), _load(canonical_text, canonical_label)
    items: list[DriftItem] = []
    t_services, c_services = template.get("services") or {}, canonical.get("services") or {}
    for name in sorted(set(c_services) | set(t_services)):
        if name not in t_services:
            items.append(DriftItem(name, "service", _ONLY_CANONICAL))
        elif name not in c_services:
            items.append(DriftItem(name, "service", _ONLY_TEMPLATE))
        else:
            items += _compare_service(name, t_services[name] or {}, c_services[name] or {}, registry)
    items += _set_items("", "named volume", set(template.get("volumes") or {}), set(canonical.get("volumes") or {}))
    return DriftReport(template=template_label, canonical=canonical_label, items=tuple(items))


def _compare_service(name: str, template: dict, canonical: dict, registry: str) -> list[DriftItem]:
    items = []
    t_image, c_image = _image_name(template.get("image"), registry), _image_name(canonical.get("image"), registry)
    if t_image != c_image:
        items.append(DriftItem(name, "image", f"template uses {t_image!r}, canonical uses {c_image!r}"))
    t_check, c_check = _healthcheck(template), _healthcheck(canonical)
    if t_check != c_check:
        message = f"template has {_show_check(t_check)}, canonical has {_show_check(c_check)}"
        items.append(DriftItem(name, "healthcheck", message))
    for aspect, extract in (
        ("environment key", _environment_keys),
        ("volume", lambda svc: {_mount(v) for v in svc.get("volumes") or []}),
        ("port", lambda svc: {_port(p) for p in svc.get("ports") or []}),
        ("profile", lambda svc: set(svc.get("profiles") or [])),
        ("depends_on", _depends_on),
    ):
        items += _set_items(name, aspect, extract(template), extract(canonical))
    return items


def _set_items(service: str, aspect: str, template: set[str], canonical: set[str]) -> list[DriftItem]:
    return [DriftItem(service, aspect, f"{value} {_ONLY_CANONICAL}") for value in sorted(canonical - template)] + [
        DriftItem(service, aspect, f"{value} {_ONLY_TEMPLATE}") for value in sorted(template - canonical)
    ]


def _load(text: str, label: str) -> dict:
    try:
        document = load_yaml(text)
    except YAMLError as exc:
        raise ComposeFileError(f"{label} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ComposeFileError(f"{label} is not a compose file (no top-level mapping).")
    return document


def _image_name(image: Any, registry: str) -> str:
    if not image:
        return "(no image)"
    name = str(image).split("@", 1)[0]
    if registry and name.startswith(registry.rstrip("/") + "/"):
        name = name[len(registry.rstrip("/")) + 1 :]
    else:
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("$")):
            name = rest
    name = name.removeprefix("library/")
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def _healthcheck(service: dict) -> tuple[str, ...] | None:
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return None
    test = check.get("test")
    if isinstance(test, str):
        return ("CMD-SHELL", test)
    return tuple(str(part) for part in test or ())


def _show_check(check: tuple[str, ...] | None) -> str:
    return "no healthcheck" if check is None else f"test {list(check)}"


def _environment_keys(service: dict) -> set[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return {str(key) for key in environment}
    return {str(item).split("=", 1)[0] for item in environment}


def _depends_on(service: dict) -> set[str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {f"{name} (service_started)" for name in depends}
    return {f"{name} ({(spec or {}).get('condition', 'service_started')})" for name, spec in depends.items()}


def _mount(volume: Any) -> str:
    if isinstance(volume, dict):
        mode = ":ro" if volume.get("read_only") else ""
        return f"{volume.get('source', '')}:{volume.get('target', '')}{mode}"
    return str(volume)


def _port(port: Any) -> str:
    if isinstance(port, dict):
        host = ":".join(str(part) for part in (port.get("host_ip"), port.get("published")) if part)
        target = f"{port.get('target')}/{port.get('protocol', 'tcp')}"
        return f"{host}:{target}" if host else target
    return str(port)

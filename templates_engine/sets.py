"""Template sets: `deploy_templates/<name>/` with a `manifest.yml`.

Manifest format (every key is checked on load; unknown keys are refused so a typo cannot silently drop
a setting):

```yaml
name: campaign                      # must equal the directory name
description: one line for the admin # optional
compose_file: docker-compose.yml    # rendered path of the compose file; must be one of `files`
env_file: .env                      # rendered path of the env file (written for non-registered tenants)
env_template: env.j2                # source of the env file, rendered with Jinja2
files:                              # rendered path -> source path in the set
  docker-compose.yml: docker-compose.yml.j2
  nginx/nginx.conf: nginx/nginx.conf
  configs/x.sh: {source: configs/x.sh, mode: "0755"}   # long form, to set the file mode
protected_paths: [mkdocs/]          # never written; checksummed before and after an upgrade
secrets: [POSTGRES_PASSWORD]        # secrets the set needs; instance creation generates exactly these
required_env: [DOMAIN, HTTP_PORT]   # variables every tenant's .env must define
ports: {http: HTTP_PORT}            # port name (key of instance.ports) -> .env variable
profiles: [monitoring]              # optional compose profiles an instance may enable
health:                             # checked on the node's loopback after an upgrade
  - {port: http, path: /health/}    # `profile: x` limits a check to instances that enable x
```

A source ending in `.j2` is rendered with Jinja2; any other source is copied byte for byte, because
Prometheus rules, Alertmanager and Grafana files use `{{ }}` syntax of their own.
"""

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._yaml import YAMLError, load_yaml
from .errors import TemplateSetError, UnsafePathError
from .paths import is_within, safe_relpath

MANIFEST = "manifest.yml"
SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PORT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
PROFILE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
DEFAULT_MODE = 0o644
ENV_MODE = 0o600

_KEYS = {
    "name",
    "description",
    "compose_file",
    "env_file",
    "env_template",
    "files",
    "protected_paths",
    "secrets",
    "required_env",
    "ports",
    "profiles",
    "health",
}


@dataclass(frozen=True)
class ManagedFile:
    """One file the set writes into the instance directory."""

    path: str
    source: str
    mode: int = DEFAULT_MODE

    @property
    def is_template(self) -> bool:
        return self.source.endswith(".j2")


@dataclass(frozen=True)
class HealthCheck:
    port: str
    path: str
    profile: str = ""


@dataclass(frozen=True, eq=False)
class TemplateSet:
    """A loaded, validated template set. Immutable; rendering caches compiled templates on it."""

    name: str
    root: Path
    description: str
    files: tuple[ManagedFile, ...]
    compose_file: str
    env_file: str
    env_template: str
    protected_paths: tuple[str, ...]
    secrets: tuple[str, ...]
    required_env: tuple[str, ...]
    ports: Mapping[str, str]
    profiles: tuple[str, ...]
    health: tuple[HealthCheck, ...]
    _cache: dict = field(default_factory=dict, repr=False)

    def managed_paths(self, *, include_env: bool) -> list[str]:
        """Paths a render writes: the managed files, plus the env file for non-registered tenants."""
        paths = [f.path for f in self.files]
        return [*paths, self.env_file] if include_env else paths

    def health_urls(self, ports: Mapping[str, int], profiles: Iterable[str] = (), host: str = "127.0.0.1") -> list[str]:
        """Health URLs of an instance with these ports and enabled profiles."""
        enabled = set(profiles)
        return [
            f"http://{host}:{ports[check.port]}{check.path}"
            for check in self.health
            if not check.profile or check.profile in enabled
        ]


def list_template_sets(root: Path) -> list[str]:
    """Names of the template sets under `root` (directories with a manifest and a valid name)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(child.name for child in root.iterdir() if SET_NAME.match(child.name) and (child / MANIFEST).is_file())


def load_template_set(root: Path, name: str) -> TemplateSet:
    """Load and validate `root/name`. Cached per (root, name) for the life of the process.

    Template sets ship with the code, so a running panel sees a new set after a restart (or after
    `clear_template_set_cache()`), as it sees new code.
    """
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise TemplateSetError(f"Invalid template set name {name!r}: use lower-case letters, digits, '-' and '_'.")
    return _load(Path(root).resolve(), name)


def clear_template_set_cache() -> None:
    _load.cache_clear()


@functools.lru_cache(maxsize=64)
def _load(root: Path, name: str) -> TemplateSet:
    set_dir = root / name
    manifest_path = set_dir / MANIFEST
    if not manifest_path.is_file():
        raise TemplateSetError(f"Template set {name!r} not found: {manifest_path} does not exist.")
    try:
        data = load_yaml(manifest_path.read_bytes())
    except YAMLError as exc:
        raise TemplateSetError(f"Template set {name!r}: {MANIFEST} is not valid YAML: {exc}") from exc
    try:
        return _parse_manifest(data, set_dir, name)
    except (UnsafePathError, TemplateSetError) as exc:
        raise TemplateSetError(f"Template set {name!r}, {MANIFEST}: {exc.message}") from exc


def _parse_manifest(data: Any, set_dir: Path, name: str) -> TemplateSet:
    if not isinstance(data, dict):
        raise TemplateSetError("the manifest must be a mapping.")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise TemplateSetError(f"unknown key(s) {', '.join(map(str, unknown))}.")
    if data.get("name") != name:
        raise TemplateSetError(f"'name' is {data.get('name')!r}, but the directory is {name!r}.")

    files = tuple(_parse_file(path, spec, set_dir) for path, spec in _mapping(data, "files").items())
    if not files:
        raise TemplateSetError("'files' lists no file.")
    paths = [f.path for f in files]
    compose_file = safe_relpath(_text(data, "compose_file"))
    env_file = safe_relpath(_text(data, "env_file"))
    env_template = _source(_text(data, "env_template"), set_dir)
    if compose_file not in paths:
        raise TemplateSetError(f"compose_file {compose_file!r} is not one of 'files'.")
    if env_file in paths:
        raise TemplateSetError(f"env_file {env_file!r} must not also be listed in 'files'.")

    protected = tuple(_protected(p) for p in _list(data, "protected_paths"))
    for path in [*paths, env_file]:
        for directory in protected:
            if is_within(path, directory):
                raise TemplateSetError(f"managed file {path!r} lies in protected path {directory!r}.")

    ports = {
        _checked(port, PORT_NAME, "ports"): _env_name(var, "ports") for port, var in _mapping(data, "ports").items()
    }
    profiles = tuple(_checked(p, PROFILE_NAME, "profiles") for p in _list(data, "profiles"))
    return TemplateSet(
        name=name,
        root=set_dir,
        description=str(data.get("description") or ""),
        files=files,
        compose_file=compose_file,
        env_file=env_file,
        env_template=env_template,
        protected_paths=protected,
        secrets=tuple(_env_name(s, "secrets") for s in _list(data, "secrets")),
        required_env=tuple(_env_name(v, "required_env") for v in _list(data, "required_env")),
        ports=MappingProxyType(ports),
        profiles=profiles,
        health=tuple(_parse_health(item, ports, profiles) for item in _list(data, "health")),
    )


def _parse_file(path: Any, spec: Any, set_dir: Path) -> ManagedFile:
    path = safe_relpath(str(path))
    mode: Any = DEFAULT_MODE
    if isinstance(spec, dict):
        unknown = set(spec) - {"source", "mode"}
        if unknown:
            raise TemplateSetError(f"file {path!r}: unknown key(s) {', '.join(map(str, sorted(unknown)))}.")
        source, mode = spec.get("source"), spec.get("mode", DEFAULT_MODE)
    else:
        source = spec
    if not isinstance(source, str):
        raise TemplateSetError(f"file {path!r}: the source must be a path in the set.")
    return ManagedFile(path=path, source=_source(source, set_dir), mode=_mode(mode, path))


def _source(source: str, set_dir: Path) -> str:
    """A source must be a regular file inside the set, also after following symlinks."""
    safe_relpath(source)
    resolved = (set_dir / source).resolve()
    if not resolved.is_relative_to(set_dir.resolve()):
        raise TemplateSetError(f"source {source!r} resolves outside the template set.")
    if not resolved.is_file():
        raise TemplateSetError(f"source {source!r} does not exist.")
    return source


def _mode(mode: Any, path: str) -> int:
    """Modes are octal: `"0640"` or `"0o640"` (quoted), or YAML 1.1's unquoted `0640`."""
    try:
        value = mode if isinstance(mode, int) else int(str(mode).removeprefix("0o"), 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise TemplateSetError(f'file {path!r}: invalid mode {mode!r}; write it as a quoted octal like "0644".')
    return value


def _protected(path: Any) -> str:
    path = safe_relpath(str(path))
    return path if path.endswith("/") else path + "/"


def _parse_health(item: Any, ports: Mapping[str, str], profiles: tuple[str, ...]) -> HealthCheck:
    if not isinstance(item, dict) or set(item) - {"port", "path", "profile"}:
        raise TemplateSetError(f"invalid health entry {item!r}: expected port, path and optional profile.")
    check = HealthCheck(
        port=str(item.get("port")), path=str(item.get("path", "")), profile=str(item.get("profile") or "")
    )
    if check.port not in ports:
        raise TemplateSetError(f"health check port {check.port!r} is not one of 'ports'.")
    if not check.path.startswith("/"):
        raise TemplateSetError(f"health check path {check.path!r} must start with '/'.")
    if check.profile and check.profile not in profiles:
        raise TemplateSetError(f"health check profile {check.profile!r} is not one of 'profiles'.")
    return check


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise TemplateSetError(f"'{key}' is required and must be a string.")
    return value


def _mapping(data: dict, key: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise TemplateSetError(f"'{key}' must be a mapping.")
    return value


def _list(data: dict, key: str) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise TemplateSetError(f"'{key}' must be a list.")
    return value


def _env_name(value: Any, key: str) -> str:
    return _checked(value, ENV_NAME, key)


def _checked(value: Any, pattern: re.Pattern, key: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise TemplateSetError(f"invalid name {value!r} in '{key}'.")
    return value

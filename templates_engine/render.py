"""Render a template set for one instance, into memory.

Jinja2 runs sandboxed with a strict undefined: a value missing from the context is an error that names
the variable, the template file and the line, never an empty string in a production file. Context values
must be single-line, so a tag or a domain cannot inject lines into YAML or .env.
"""

import hashlib
import os
import re
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from .errors import RenderError, UnsafePathError
from .paths import safe_relpath
from .sets import ENV_MODE, TemplateSet

_BARE_ENV_VALUE = re.compile(r"^[A-Za-z0-9_./:@%+,=-]*$")
_VARIABLE_PATH = re.compile(r"^[A-Za-z_][\w.\[\]]*$")
_LINE_BREAKS = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True)
class RenderedFile:
    """A file as it will be written into the instance directory."""

    path: str
    content: bytes
    mode: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def render(template_set: TemplateSet, context: Mapping[str, Any], *, include_env: bool) -> dict[str, RenderedFile]:
    """Render every managed file of the set (and the env file if `include_env`), keyed by path.

    `include_env` is false for registered tenants: the panel never writes their .env.
    """
    if not isinstance(context, Mapping):
        raise RenderError("The render context must be a mapping.")
    values = _tracked(context, "")
    files: dict[str, RenderedFile] = {}
    for managed in template_set.files:
        content = (
            _render_template(template_set, managed.source, values)
            if managed.is_template
            else _static_source(template_set, managed.source)
        )
        files[managed.path] = RenderedFile(safe_relpath(managed.path), content, managed.mode)
    if include_env:
        content = _render_template(template_set, template_set.env_template, values)
        files[template_set.env_file] = RenderedFile(safe_relpath(template_set.env_file), content, ENV_MODE)
    return files


def write_rendered(files: Mapping[str, RenderedFile], out_dir: Path, *, private: bool = False) -> list[Path]:
    """Write rendered files under `out_dir` (the render harness; nodes are written by the drivers).

    Each file is written to a temporary file and renamed into place, with its mode, or with 0600 (and its
    folders 0700, `out_dir` included) when `private`: a render holds the tenant's .env. A path is refused
    if it is unsafe or if any directory on the way is a symlink, which could lead outside `out_dir`.
    """
    base = Path(out_dir)
    base.mkdir(parents=True, exist_ok=True)
    base = base.resolve()
    if private:
        os.chmod(base, 0o700)
    written = []
    for rendered in files.values():
        parts = safe_relpath(rendered.path).split("/")
        parent = base
        for part in parts[:-1]:
            parent = parent / part
            if parent.is_symlink():
                raise UnsafePathError(f"Refusing to write {rendered.path!r}: {parent} is a symlink.")
            parent.mkdir(exist_ok=True)
            if private:
                os.chmod(parent, 0o700)
        target = parent / parts[-1]
        if target.is_symlink() or target.is_dir():
            raise UnsafePathError(f"Refusing to write {rendered.path!r}: {target} is a symlink or a directory.")
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{parts[-1]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(rendered.content)
                os.fchmod(handle.fileno(), 0o600 if private else rendered.mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


# --- Jinja environment -------------------------------------------------------------------------------


class _MissingValue(UndefinedError):
    """Raised by `_StrictUndefined`; its message is the dotted path of the missing value."""


class _StrictUndefined(StrictUndefined):
    """StrictUndefined whose error names the full path (`instance.ports.http`), not `'dict object'`."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None, exc: Any = None):
        super().__init__(hint=hint, obj=obj, name=name, exc=_MissingValue)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        owner = getattr(self._undefined_obj, "_ccp_path", "")
        return f"{owner}.{self._undefined_name}" if owner else str(self._undefined_name)


class _Tracked(dict):
    """A context mapping that knows its own path, so a missing key can be named in full."""

    __slots__ = ("_ccp_path",)


def _tracked(value: Any, path: str) -> Any:
    """Copy the context into `_Tracked` mappings. A None value counts as missing, not as "None"."""
    if isinstance(value, Mapping):
        tracked = _Tracked(
            (str(key), _tracked(item, f"{path}.{key}" if path else str(key)))
            for key, item in value.items()
            if item is not None
        )
        tracked._ccp_path = path
        return tracked
    if isinstance(value, list | tuple):
        return [_tracked(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _single_line(value: Any) -> Any:
    """Jinja `finalize`: every printed value must stay on one line (no YAML or .env injection)."""
    if isinstance(value, str) and _LINE_BREAKS.search(value):
        raise ValueError("a value contains a line break or NUL; context values must be single-line")
    return value


def env_value(value: Any) -> str:
    """Jinja filter: a value written so that compose's .env parser reads it back unchanged.

    Plain values stay bare; anything else is single-quoted (compose takes single-quoted text literally,
    `$` and `#` included). A value with a single quote cannot be written that way and is refused.
    """
    text = str(value)
    if _BARE_ENV_VALUE.match(text):
        return text
    if "'" in text or _LINE_BREAKS.search(text):
        raise ValueError("a value for .env contains a single quote or a line break; it cannot be written safely")
    return f"'{text}'"


def _environment(template_set: TemplateSet) -> SandboxedEnvironment:
    env = template_set._cache.get("environment")
    if env is None:
        env = SandboxedEnvironment(
            loader=FileSystemLoader(str(template_set.root)),
            undefined=_StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            auto_reload=False,
            finalize=_single_line,
        )
        env.filters["env_value"] = env_value
        template_set._cache["environment"] = env
    return env


def _compiled(template_set: TemplateSet, source: str) -> Template:
    try:
        return _environment(template_set).get_template(source)
    except TemplateSyntaxError as exc:
        raise RenderError(
            f"Template {template_set.name}/{source}, line {exc.lineno}: syntax error: {exc.message}",
            template=source,
            line=exc.lineno,
        ) from exc


def _render_template(template_set: TemplateSet, source: str, values: Mapping[str, Any]) -> bytes:
    template = _compiled(template_set, source)
    try:
        return template.render(values).encode("utf-8")
    except Exception as exc:  # any failure inside a template becomes a RenderError
        raise _render_error(template_set, source, exc) from exc


def _render_error(template_set: TemplateSet, source: str, exc: Exception) -> RenderError:
    template, line = source, None
    root = str(template_set.root)
    for frame in traceback.extract_tb(exc.__traceback__):
        # Jinja rewrites the traceback so template frames carry the template's file and line.
        if frame.filename.startswith(root + os.sep):
            template = os.path.relpath(frame.filename, root)
            line = frame.lineno
    where = f"Template {template_set.name}/{template}" + (f", line {line}" if line else "")
    if isinstance(exc, _MissingValue) and _VARIABLE_PATH.match(str(exc)):
        variable = str(exc)
        return RenderError(f"{where}: no value for {variable!r}.", template=template, line=line, variable=variable)
    reason = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
    return RenderError(f"{where}: {reason}.", template=template, line=line)


def _static_source(template_set: TemplateSet, source: str) -> bytes:
    key = ("static", source)
    if key not in template_set._cache:
        template_set._cache[key] = (template_set.root / source).read_bytes()
    return template_set._cache[key]

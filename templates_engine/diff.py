"""Preview of a release upgrade: rendered files against the files on the node.

Per file status:
- `unchanged`: the node has exactly the rendered bytes.
- `changed`: the node has the file with other bytes; it will be overwritten.
- `new`: this render adds a file the deployment did not manage before (not in `managed`), and the node
  does not have it; it will be created.
- `missing`: the deployment manages the file (it is in `managed`) but the node does not have it, e.g.
  someone deleted it; it will be created again. Same action as `new`, but worth an operator's look.
Paths in `managed` that the render no longer produces are listed as `orphaned`: upgrades leave them
in place, they are never deleted.

Classification of a change:
- `structural`: the key structure differs, i.e. in a YAML file (compose first of all) a service or any
  other mapping key was added or removed, or in the env file a variable was; also a file that will be
  created, and a YAML file that cannot be parsed on either side (nothing proves the change harmless).
- `values-only`: the same keys with other values. Items of YAML lists are values (a changed port or
  volume entry is values-only); compose's `environment`, `labels` and build `args` lists of `K=V` count
  as mappings. Files without a structure we read (nginx.conf, JSON dashboards) are `values-only`.

Secrets never reach the preview text: values of `secret_keys` in the env file are shown as
`[redacted]` (REDACTED, the one marker the whole panel uses), followed by ` (changed)` on the new side
when they differ, so the diff still shows the line. The `preview_hash` covers the
real bytes, so an approval of a preview is an approval of exactly these files on exactly that node state.
"""

import difflib
import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._yaml import YAMLError, load_yaml
from .envfile import parse_env
from .errors import EnvFileError
from .render import RenderedFile
from .sets import TemplateSet

PREVIEW_HASH_VERSION = "ccp-preview-v1"
_YAML_SUFFIXES = (".yml", ".yaml")
_KV_LIST_KEYS = frozenset({"environment", "labels", "args"})
# The one redaction marker: here, the lowest layer that writes it; instances.redaction uses it too.
REDACTED = "[redacted]"
_ENV_NOT_SHOWN = "(env file not shown: it cannot be parsed line by line, and it holds secrets)\n"


class FileStatus(StrEnum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    NEW = "new"
    MISSING = "missing"


class ChangeKind(StrEnum):
    NONE = "none"
    VALUES_ONLY = "values-only"
    STRUCTURAL = "structural"


@dataclass(frozen=True)
class FileDiff:
    """One file of a preview. `before`/`after` are the (redacted) texts shown to the operator."""

    path: str
    status: FileStatus
    kind: ChangeKind
    unified_diff: str
    before: str
    after: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "status": self.status, "kind": self.kind, "diff": self.unified_diff}


@dataclass(frozen=True)
class Preview:
    files: tuple[FileDiff, ...]
    orphaned: tuple[str, ...]
    preview_hash: str

    @property
    def changes(self) -> list[FileDiff]:
        return [f for f in self.files if f.status != FileStatus.UNCHANGED]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def kind(self) -> ChangeKind:
        """The preview's overall kind: the strongest of its files'."""
        kinds = {f.kind for f in self.files}
        for kind in (ChangeKind.STRUCTURAL, ChangeKind.VALUES_ONLY):
            if kind in kinds:
                return kind
        return ChangeKind.NONE

    def summary(self) -> str:
        if not self.has_changes:
            return "No changes: the node already has every rendered file."
        parts = [f"{f.path} ({f.status}, {f.kind})" for f in self.changes]
        return f"{len(parts)} file(s) to write, {self.kind}: " + ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, to store with an Upgrade (the preview it was approved with)."""
        return {
            "preview_hash": self.preview_hash,
            "kind": self.kind,
            "files": [f.as_dict() for f in self.files],
            "orphaned": list(self.orphaned),
        }


def diff_files(
    rendered: Mapping[str, bytes],
    actual: Mapping[str, bytes | None],
    managed: Iterable[str],
    *,
    env_file: str = ".env",
    secret_keys: Collection[str] = (),
) -> Preview:
    """Compare rendered files with the node's. `actual` must have a key for every rendered path
    (None = absent on the node): a path nobody read must not pass for an absent file.
    """
    managed = sorted(set(managed))
    unread = [path for path in rendered if path not in actual]
    if unread:
        raise ValueError(f"actual has no entry for rendered path(s): {', '.join(unread)}")
    files = tuple(
        _diff_one(path, rendered[path], actual[path], path in managed, path == env_file, secret_keys)
        for path in rendered
    )
    orphaned = tuple(path for path in managed if path not in rendered)
    return Preview(files=files, orphaned=orphaned, preview_hash=preview_hash(rendered, actual, managed))


def preview_render(
    template_set: TemplateSet,
    files: Mapping[str, RenderedFile],
    actual: Mapping[str, bytes | None],
    *,
    managed: Iterable[str] | None = None,
) -> Preview:
    """`diff_files` for a render of `template_set`. `managed` defaults to what this set manages."""
    return diff_files(
        {path: f.content for path, f in files.items()},
        actual,
        template_set.managed_paths(include_env=template_set.env_file in files) if managed is None else managed,
        env_file=template_set.env_file,
        secret_keys=template_set.secrets,
    )


def preview_hash(rendered: Mapping[str, bytes], actual: Mapping[str, bytes | None], managed: Iterable[str]) -> str:
    """sha256 over the rendered files, the node's files' hashes and the managed list, path-sorted."""
    digest = hashlib.sha256(PREVIEW_HASH_VERSION.encode() + b"\n")
    for path in sorted(rendered):
        before = actual.get(path)
        before_hash = hashlib.sha256(before).hexdigest() if before is not None else "-"
        line = f"{path}\0{hashlib.sha256(rendered[path]).hexdigest()}\0{before_hash}\n"
        digest.update(line.encode())
    for path in sorted(set(managed)):
        digest.update(f"managed\0{path}\n".encode())
    return digest.hexdigest()


def side_by_side_html(a: str, b: str, *, fromdesc: str = "on the node", todesc: str = "rendered") -> str:
    """An HTML table of two texts side by side, changed regions with context. difflib escapes the
    text (&, <, >), so the result is safe to mark safe in a Django template.
    """
    return difflib.HtmlDiff(wrapcolumn=100).make_table(
        a.splitlines(), b.splitlines(), fromdesc=fromdesc, todesc=todesc, context=True, numlines=3
    )


def _diff_one(
    path: str, after: bytes, before: bytes | None, managed: bool, is_env: bool, secret_keys: Collection[str]
) -> FileDiff:
    if before is None:
        status = FileStatus.MISSING if managed else FileStatus.NEW
        after_text = _shown(after, None, is_env, secret_keys)
        return FileDiff(path, status, ChangeKind.STRUCTURAL, _unified(path, "", after_text), "", after_text)
    if before == after:
        text = _shown(after, None, is_env, secret_keys)
        return FileDiff(path, FileStatus.UNCHANGED, ChangeKind.NONE, "", text, text)
    before_text = _shown(before, None, is_env, secret_keys)
    after_text = _shown(after, before, is_env, secret_keys)
    kind = _classify(path, before, after, is_env)
    return FileDiff(path, FileStatus.CHANGED, kind, _unified(path, before_text, after_text), before_text, after_text)


def _classify(path: str, before: bytes, after: bytes, is_env: bool) -> ChangeKind:
    try:
        if is_env:
            same = parse_env(_text(before)).keys() == parse_env(_text(after)).keys()
        elif path.endswith(_YAML_SUFFIXES):
            same = _key_paths(load_yaml(before)) == _key_paths(load_yaml(after))
        else:
            same = True
    except (YAMLError, EnvFileError, UnicodeDecodeError):
        same = False
    return ChangeKind.VALUES_ONLY if same else ChangeKind.STRUCTURAL


def _key_paths(node: Any, prefix: str = "", into: set[str] | None = None) -> set[str]:
    """Every mapping key path of a YAML document (`services.api.healthcheck.test`). List items are
    values; keys of mappings inside lists count under `path[]`.
    """
    paths: set[str] = set() if into is None else into
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            if key in _KV_LIST_KEYS and isinstance(value, list):
                paths.update(f"{path}.{str(item).split('=', 1)[0]}" for item in value)
            else:
                _key_paths(value, path, paths)
    elif isinstance(node, list):
        for item in node:
            _key_paths(item, prefix + "[]", paths)
    return paths


def _shown(content: bytes, other: bytes | None, is_env: bool, secret_keys: Collection[str]) -> str:
    """The text an operator sees: decoded, and for the env file with secret values redacted."""
    text = _text(content)
    if not is_env or not secret_keys:
        return text
    try:
        values = parse_env(text)
        previous = parse_env(_text(other)) if other is not None else values
    except (EnvFileError, UnicodeDecodeError):
        return _ENV_NOT_SHOWN
    if any("\n" in values.get(key, "") for key in secret_keys):
        return _ENV_NOT_SHOWN  # a multi-line secret would leak through line-by-line redaction
    lines = []
    for line in text.splitlines(keepends=True):
        key = _env_key(line)
        if key in secret_keys:
            changed = values.get(key) != previous.get(key)
            end = "\n" if line.endswith("\n") else ""
            line = f"{key}={REDACTED} (changed){end}" if changed else f"{key}={REDACTED}{end}"
        lines.append(line)
    return "".join(lines)


def _env_key(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("export "):
        stripped = stripped[7:].lstrip()
    return stripped.split("=", 1)[0].strip() if "=" in stripped and not stripped.startswith("#") else ""


def _unified(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _text(content: bytes) -> str:
    if b"\0" in content:
        return "(binary file)\n"
    return content.decode("utf-8", errors="replace")

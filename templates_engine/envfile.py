""".env files and the variables a compose file needs from them.

`parse_env` reads the subset of the dotenv format that docker compose reads: comments, blank lines,
`export `, single quotes (literal), double quotes (with backslash escapes, may span lines) and inline
comments after unquoted values (` #`; a `#` inside a value without a space before it belongs to the
value). Values are not interpolated. Compose also reads the shell environment, but on a node the
upgrade's shell has none of the tenant's variables, so the .env alone decides.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._yaml import YAMLError, load_yaml
from .errors import ComposeFileError, EnvFileError

_ASSIGNMENT = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "$": "$"}
# Longest first: ":-" must win over "-".
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


@dataclass(frozen=True)
class EnvAssignment:
    """One `NAME=value` of a .env file: where its value sits in the text (quotes excluded) and its line."""

    name: str
    value: str
    line_no: int
    start: int  # first character of the value (after an opening quote)
    end: int  # one past its last character (before a closing quote or an inline comment)
    quote: str  # "'", '"' or "" (unquoted)


def parse_env(text: str) -> dict[str, str]:
    """Parse .env text into a dict. A later definition of a key wins, as in compose."""
    return {a.name: a.value for a in env_assignments(text)}


def env_assignments(text: str) -> list[EnvAssignment]:
    """Every assignment of the .env text, in file order (a name set twice appears twice)."""
    found: list[EnvAssignment] = []
    pos, line_no = 0, 1
    while pos < len(text):
        line_end = _line_end(text, pos)
        line = text[pos:line_end].strip()
        if not line or line.startswith("#"):
            pos, line_no = line_end + 1, line_no + 1
            continue
        match = _ASSIGNMENT.match(text, pos)
        if not match:
            raise EnvFileError(f".env line {line_no}: expected NAME=value, found {_shorten(line)!r}.")
        value, start, end, next_pos = _read_value(text, match.end(), line_no)
        quote = text[match.end()] if start > match.end() else ""
        found.append(EnvAssignment(match.group(1), value, line_no, start, end, quote))
        line_no += text.count("\n", pos, next_pos)
        pos = next_pos
    return found


def with_env_value(text: str, name: str, value: str) -> tuple[str, list[int]]:
    """The .env text with `name` set to `value`, changing nothing else: comments (also on that line),
    quoting, `export`, other variables and line endings stay as they are.

    Compose uses the last assignment of a name, so that is the one changed (earlier ones are left:
    they are dead, and rewriting them would touch lines the tenant wrote). Without any assignment a
    line is appended. Returns the new text and the line numbers where `name` is assigned (before).
    `value` must be a plain single-line value (an image tag): it is written without quotes of its own.
    """
    if any(c in value for c in "\n\r\"'#\\ $"):
        raise EnvFileError(f"{name} can only be set to a plain value, not {_shorten(value)!r}.")
    assignments = [a for a in env_assignments(text) if a.name == name]
    if not assignments:
        newline = "\r\n" if "\r\n" in text else "\n"
        separator = "" if not text or text.endswith("\n") else newline
        return f"{text}{separator}{name}={value}{newline}", []
    last = assignments[-1]
    return text[: last.start] + value + text[last.end :], [a.line_no for a in assignments]


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end


def _read_value(text: str, pos: int, line_no: int) -> tuple[str, int, int, int]:
    """Read the value that starts at `pos`: (value, its start, its end, the position after its last line)."""
    quote = text[pos] if pos < len(text) else ""
    if quote in ("'", '"'):
        value, close = _read_quoted(text, pos + 1, quote, line_no)
        end = _line_end(text, close)
        trailing = text[close:end].strip()
        if trailing and not trailing.startswith("#"):
            raise EnvFileError(f".env line {line_no}: unexpected text after the closing quote: {_shorten(trailing)!r}.")
        return value, pos + 1, close - 1, end + 1
    end = _line_end(text, pos)
    raw = text[pos:end]
    comment = re.search(r"\s#", raw)
    if comment:
        raw = raw[: comment.start()]
    stripped = raw.rstrip()
    if stripped.endswith("\r"):
        stripped = stripped[:-1]
    return raw.strip(), pos, pos + len(stripped), end + 1


def _read_quoted(text: str, pos: int, quote: str, line_no: int) -> tuple[str, int]:
    chars = []
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return "".join(chars), pos + 1
        if char == "\\" and quote == '"' and pos + 1 < len(text):
            escaped = text[pos + 1]
            chars.append(_DOUBLE_QUOTE_ESCAPES.get(escaped, "\\" + escaped))
            pos += 2
            continue
        chars.append(char)
        pos += 1
    raise EnvFileError(f".env line {line_no}: the quoted value is never closed.")


def _shorten(text: str) -> str:
    # Only the start of a line: the rest may be a secret.
    return text if len(text) <= 20 else text[:20] + "..."


# --- variables in a compose file ------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableRef:
    """One `${NAME...}` or `$NAME` reference. `nested` refs sit in another's default text."""

    name: str
    operator: str = ""
    nested: bool = False

    @property
    def required(self) -> bool:
        """Compose needs a value: `${X}`, `$X`, `${X?msg}`, `${X:?msg}` (not inside another's default)."""
        return not self.nested and self.operator in ("", "?", ":?")

    @property
    def non_empty(self) -> bool:
        """`${X:?msg}` refuses an empty value too."""
        return self.operator == ":?"


def compose_variables(text: str) -> list[VariableRef]:
    """Every variable reference in the values of a compose file, first occurrence order, de-duplicated.

    Only values are scanned (compose interpolates values, not keys, and not comments). `$$` is an
    escaped dollar. References inside a default (`${A:-${B}}`) are `nested`: B matters only when A is
    unset, so it never blocks.
    """
    try:
        document = load_yaml(text)
    except YAMLError as exc:
        raise ComposeFileError(f"The compose file is not valid YAML: {exc}") from exc
    found: dict[VariableRef, None] = {}
    for value in _string_values(document):
        for ref in _scan(value, nested=False):
            found.setdefault(ref, None)
    return list(found)


def _string_values(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _string_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _string_values(value)


def _scan(text: str, *, nested: bool) -> Iterable[VariableRef]:
    pos, length = 0, len(text)
    while True:
        pos = text.find("$", pos)
        if pos == -1 or pos + 1 >= length:
            return
        follow = text[pos + 1]
        if follow == "$":
            pos += 2
            continue
        if follow != "{":
            match = _NAME.match(text, pos + 1)
            if match:
                yield VariableRef(match.group(), "", nested)
                pos = match.end()
            else:
                pos += 1
            continue
        match = _NAME.match(text, pos + 2)
        if not match:
            raise ComposeFileError(f"Invalid variable reference in compose value {text!r}.")
        name, pos = match.group(), match.end()
        if text.startswith("}", pos):
            yield VariableRef(name, "", nested)
            pos += 1
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, pos)), None)
        if operator is None:
            reference = f"${{{name}{text[pos : pos + 1]}"
            raise ComposeFileError(f"Invalid variable reference '{reference}' in compose value {text!r}.")
        body_start = pos + len(operator)
        body_end = _closing_brace(text, body_start)
        yield VariableRef(name, operator, nested)
        if operator not in ("?", ":?"):
            yield from _scan(text[body_start:body_end], nested=True)
        pos = body_end + 1


def _closing_brace(text: str, pos: int) -> int:
    depth = 1
    while pos < len(text):
        if text.startswith("$$", pos):
            pos += 2
            continue
        if text.startswith("${", pos):
            depth, pos = depth + 1, pos + 2
            continue
        if text[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    raise ComposeFileError(f"Unclosed variable reference in compose value {text!r}.")


# --- coverage -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How well an env file covers a compose file's variables. Lists are sorted names."""

    required_missing: list[str]
    defaulted_missing: list[str]
    defined: list[str]

    @property
    def blocked(self) -> bool:
        """A release upgrade must not go ahead (unless an operator overrides it)."""
        return bool(self.required_missing)

    def format(self) -> str:
        lines = []
        if self.required_missing:
            lines.append("Missing from .env (required): " + ", ".join(self.required_missing))
        if self.defaulted_missing:
            lines.append("Not in .env, compose default used: " + ", ".join(self.defaulted_missing))
        return "\n".join(lines) or "Every variable the compose file uses is defined in .env."


def env_coverage(compose_text: str, env: Mapping[str, str], *, also_required: Iterable[str] = ()) -> Coverage:
    """Check `env` against the compose file's references (and a set's `required_env`, if given).

    Required and missing: referenced without a default and not defined, or `${X:?}` and empty, or
    named in `also_required` and not defined. Defaulted and missing: referenced only with a default
    (or an alternative, `${X:+y}`) and not defined; compose then uses the default, so it never blocks.
    """
    refs = compose_variables(compose_text)
    required = {ref.name for ref in refs if ref.required} | set(also_required)
    empty_refused = {ref.name for ref in refs if ref.non_empty and not ref.nested}
    referenced = {ref.name for ref in refs} | required
    missing = {name for name in referenced if name not in env}
    missing |= {name for name in empty_refused if env.get(name) == ""}
    required_missing = sorted(missing & required)
    return Coverage(
        required_missing=required_missing,
        defaulted_missing=sorted(missing - required),
        defined=sorted(referenced - missing),
    )

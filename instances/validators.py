"""Validators for values that reach a node: slugs, tags, paths, addresses, ports.

Each says in a sentence what is wrong, because operators meet them in the admin and the API.
"""

import ipaddress
import os
import posixpath
import re
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
COMPOSE_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
PROFILE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
PORT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
SECRET_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def validate_slug(value: str) -> None:
    if not SLUG_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a valid slug: use 1-63 lower-case letters, digits and hyphens, "
            "starting and ending with a letter or digit.",
            params={"value": value},
            code="invalid_slug",
        )


def validate_compose_project(value: str) -> None:
    if not COMPOSE_PROJECT_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a valid compose project name: use lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit.",
            params={"value": value},
            code="invalid_project",
        )


def validate_image_tag(value: str) -> None:
    if not IMAGE_TAG_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a valid image tag: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'.",
            params={"value": value},
            code="invalid_tag",
        )


def validate_absolute_dir(value: str) -> None:
    """An install directory: absolute, already normalised, no '..', not the root."""
    if not value or not value.startswith("/"):
        raise ValidationError("%(value)r must be an absolute path.", params={"value": value}, code="not_absolute")
    if ".." in value.split("/"):
        raise ValidationError("%(value)r must not contain '..'.", params={"value": value}, code="traversal")
    if any(c in value for c in "\0\n\r"):
        raise ValidationError("The path must not contain control characters.", code="control")
    if posixpath.normpath(value) != value:
        raise ValidationError(
            "%(value)r is not normalised; write it as %(norm)r.",
            params={"value": value, "norm": posixpath.normpath(value)},
            code="not_normal",
        )
    if value == "/":
        raise ValidationError("The root directory '/' cannot be used.", code="root")


def validate_relative_path(value: str) -> None:
    """A path inside an install directory (protected paths, scripts): relative, no '..'."""
    if not value or value.startswith("/") or ".." in value.split("/") or any(c in value for c in "\0\n\r"):
        raise ValidationError(
            "%(value)r must be a relative path inside the install directory, without '..'.",
            params={"value": value},
            code="bad_relative",
        )


def validate_address(value: str) -> None:
    """A hostname or an IP address. Not the unspecified address (0.0.0.0, ::) and not the shorthand
    forms the C resolver also takes as IPv4 (`0`, `127.1`, `0x7f000001`): they hide where a node really is."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_unspecified:
            raise ValidationError(
                "%(value)r is the unspecified address; give the node's real address.",
                params={"value": value},
                code="invalid_address",
            )
        return
    host = (value or "").rstrip(".")
    valid = bool(host) and len(host) <= 253 and all(HOSTNAME_LABEL_RE.match(label) for label in host.split("."))
    if not valid or host.split(".")[-1].isdigit() or _is_ipv4_shorthand(host):
        raise ValidationError(
            "%(value)r is neither a hostname nor an IP address.", params={"value": value}, code="invalid_address"
        )


def validate_domain(value: str) -> None:
    """A tenant's DNS name: hostname labels only. Templates write it into configs (`server_name`, `.env`),
    so nothing else — no space, `;`, quote or newline — may reach them."""
    host = (value or "").rstrip(".")
    if (
        not host
        or len(host) > 253
        or not all(HOSTNAME_LABEL_RE.match(label) for label in host.split("."))
        or host.split(".")[-1].isdigit()
    ):
        raise ValidationError(
            "%(value)r is not a domain name: use letters, digits and hyphens in dot-separated "
            "labels, e.g. campaign.example.org.",
            params={"value": value},
            code="invalid_domain",
        )


def _is_ipv4_shorthand(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def validate_unix_user(value: str) -> None:
    if not UNIX_USER_RE.match(value or ""):
        raise ValidationError("%(value)r is not a valid user name.", params={"value": value}, code="invalid_user")


def validate_port(value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValidationError(
            "Port %(value)r must be a whole number from 1 to 65535.", params={"value": value}, code="invalid_port"
        )


def validate_ports(value: dict) -> None:
    """Ports as {name: number}, e.g. {"http": 8080}."""
    if not isinstance(value, dict):
        raise ValidationError('Ports must be a mapping of names to port numbers, e.g. {"http": 8080}.')
    seen: dict[int, str] = {}
    for name, port in value.items():
        if not PORT_NAME_RE.match(str(name)):
            raise ValidationError(
                "Port name %(name)r must be lower-case letters, digits and '_'.",
                params={"name": name},
                code="invalid_port_name",
            )
        validate_port(port)
        if port in seen:
            raise ValidationError(
                "Port %(port)s is used twice (%(a)s and %(b)s).",
                params={"port": port, "a": seen[port], "b": name},
                code="duplicate_port",
            )
        seen[port] = name


def validate_profiles(value: str) -> None:
    for profile in [p.strip() for p in (value or "").split(",") if p.strip()]:
        if not PROFILE_RE.match(profile):
            raise ValidationError("%(value)r is not a valid compose profile name.", params={"value": profile})


def validate_path_list(value: list) -> None:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValidationError("Expected a list of relative paths.")
    for path in value:
        validate_relative_path(path)


def validate_url_list(value: list) -> None:
    if not isinstance(value, list):
        raise ValidationError("Expected a list of http(s) URLs.")
    for url in value:
        validate_health_url(url)


def validate_health_url(url) -> None:
    """An http or https URL the node fetches: no other scheme (file:, gopher:, ...), a host, and no
    whitespace or control characters that could end an argument or a header."""
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValidationError(
            "%(value)r is not a URL (no spaces or control characters).", params={"value": url}, code="invalid_url"
        )
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not url.startswith(scheme + "://") or not host:
        raise ValidationError(
            "%(value)r is not an http:// or https:// URL with a host.", params={"value": url}, code="invalid_url"
        )


def validate_secret_name(value: str) -> None:
    """A secret becomes an environment variable in .env: NAME=value, one per line."""
    if not isinstance(value, str) or not SECRET_NAME_RE.match(value):
        raise ValidationError(
            "%(value)r is not a valid secret name: use upper-case letters, digits and '_', "
            "not starting with a digit (an environment variable name).",
            params={"value": value},
            code="invalid_secret_name",
        )


def validate_local_driver_allowed(driver: str) -> None:
    if driver == "local" and not settings.CCP_ALLOW_LOCAL_DRIVER:
        raise ValidationError(
            "The local driver runs commands as the panel's own user on the panel host; it is "
            "off unless CCP_ALLOW_LOCAL_DRIVER is set.",
            code="local_driver_off",
        )


def validate_ssh_key_path(value: str) -> None:
    """A key file on the panel host: only inside CCP_SSH_KEY_DIR (after resolving symlinks and '..'),
    so a node can never be pointed at another file the panel's user can read."""
    if not value:
        return
    key_dir = settings.CCP_SSH_KEY_DIR
    if not key_dir:
        raise ValidationError(
            "SSH key paths are off: set CCP_SSH_KEY_DIR to the folder that holds the key "
            "files, or store the private key instead.",
            code="key_dir_unset",
        )
    root = os.path.realpath(key_dir)
    if not os.path.isabs(value) or os.path.commonpath([root, os.path.realpath(value)]) != root:
        raise ValidationError(
            "%(value)r is not inside CCP_SSH_KEY_DIR (%(root)s).",
            params={"value": value, "root": root},
            code="key_outside_dir",
        )

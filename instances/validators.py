"""Validators for values that reach a node: slugs, tags, paths, addresses, ports.

Each says in a sentence what is wrong, because operators meet them in the admin and the API.
"""

import ipaddress
import posixpath
import re

from django.core.exceptions import ValidationError

SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
COMPOSE_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
PROFILE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
PORT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def validate_slug(value: str) -> None:
    if not SLUG_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a valid slug: use 1-63 lower-case letters, digits and hyphens, "
            "starting and ending with a letter or digit.", params={"value": value}, code="invalid_slug")


def validate_compose_project(value: str) -> None:
    if not COMPOSE_PROJECT_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a valid compose project name: use lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit.", params={"value": value}, code="invalid_project")


def validate_image_tag(value: str) -> None:
    if not IMAGE_TAG_RE.match(value or ""):
        raise ValidationError(
            "%(value)r is not a valid image tag: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'.", params={"value": value}, code="invalid_tag")


def validate_absolute_dir(value: str) -> None:
    """An install directory: absolute, already normalised, no '..', not the root."""
    if not value or not value.startswith("/"):
        raise ValidationError("%(value)r must be an absolute path.", params={"value": value}, code="not_absolute")
    if ".." in value.split("/"):
        raise ValidationError("%(value)r must not contain '..'.", params={"value": value}, code="traversal")
    if any(c in value for c in "\0\n\r"):
        raise ValidationError("The path must not contain control characters.", code="control")
    if posixpath.normpath(value) != value:
        raise ValidationError("%(value)r is not normalised; write it as %(norm)r.",
                              params={"value": value, "norm": posixpath.normpath(value)}, code="not_normal")
    if value == "/":
        raise ValidationError("The root directory '/' cannot be used.", code="root")


def validate_relative_path(value: str) -> None:
    """A path inside an install directory (protected paths, scripts): relative, no '..'."""
    if not value or value.startswith("/") or ".." in value.split("/") or any(c in value for c in "\0\n\r"):
        raise ValidationError("%(value)r must be a relative path inside the install directory, without '..'.",
                              params={"value": value}, code="bad_relative")


def validate_address(value: str) -> None:
    """A hostname or an IP address."""
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    host = (value or "").rstrip(".")
    if not host or len(host) > 253 or not all(HOSTNAME_LABEL_RE.match(label) for label in host.split(".")):
        raise ValidationError("%(value)r is neither a hostname nor an IP address.",
                              params={"value": value}, code="invalid_address")


def validate_unix_user(value: str) -> None:
    if not UNIX_USER_RE.match(value or ""):
        raise ValidationError("%(value)r is not a valid user name.", params={"value": value}, code="invalid_user")


def validate_port(value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValidationError("Port %(value)r must be a whole number from 1 to 65535.",
                              params={"value": value}, code="invalid_port")


def validate_ports(value: dict) -> None:
    """Ports as {name: number}, e.g. {"http": 8080}."""
    if not isinstance(value, dict):
        raise ValidationError("Ports must be a mapping of names to port numbers, e.g. {\"http\": 8080}.")
    seen: dict[int, str] = {}
    for name, port in value.items():
        if not PORT_NAME_RE.match(str(name)):
            raise ValidationError("Port name %(name)r must be lower-case letters, digits and '_'.",
                                  params={"name": name}, code="invalid_port_name")
        validate_port(port)
        if port in seen:
            raise ValidationError("Port %(port)s is used twice (%(a)s and %(b)s).",
                                  params={"port": port, "a": seen[port], "b": name}, code="duplicate_port")
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
    if not isinstance(value, list) or not all(isinstance(u, str) and re.match(r"^https?://", u) for u in value):
        raise ValidationError("Expected a list of http(s) URLs.")


def validate_private_key(value: str) -> None:
    """An unencrypted OpenSSH/PEM private key the SSH driver can load (empty: none)."""
    if not value.strip():
        return
    from .drivers import AuthenticationFailed
    from .drivers.ssh_connect import load_client_key

    try:
        load_client_key(pkey_text=value)
    except AuthenticationFailed:
        raise ValidationError("This is not an unencrypted OpenSSH/PEM private key (ed25519, ecdsa, rsa).",
                              code="invalid_key") from None

"""The tags the image registry has for an instance's images, for the Quick-upgrade page's tag picker.

Docker Registry HTTP API v2: `GET /v2/<name>/tags/list`. Answers are cached briefly
(CCP_REGISTRY_TAGS_CACHE_SECONDS) so a page that lists them does not ask the registry on every view.
A registry that does not answer is not an error: the operator types the tag instead.
"""

import ipaddress
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import yaml
from django.conf import settings
from django.core.cache import cache

from ccp.errors import CCPError
from instances.preview import instance_render

# `${IMAGE_TAG:-v1}`-style tag (compose interpolation) or a literal `:tag` at the end of an image reference.
TAG_SUFFIX_RE = re.compile(r":(\$\{[^}]*\}|[A-Za-z0-9_][A-Za-z0-9_.-]*)$")
VERSION_TAG_RE = re.compile(r"^v?(\d+(?:\.\d+)*)")


@dataclass
class RegistryTags:
    tags: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    problem: str = ""  # why no tags are listed, in a sentence


def split_image(image: str) -> tuple[str, str] | None:
    """'127.0.0.1:5500/ccp-test/app:${IMAGE_TAG:-v1}' → ('127.0.0.1:5500', 'ccp-test/app'); None without a host."""
    name = TAG_SUFFIX_RE.sub("", image.split("@", 1)[0])
    host, _, path = name.partition("/")
    if not path or not ("." in host or ":" in host or host == "localhost"):
        return None
    return host, path


def is_loopback(host: str) -> bool:
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        return bare == "localhost" or ipaddress.ip_address(bare.strip("[]")).is_loopback
    except ValueError:
        return False


def may_ask(host: str) -> bool:
    """CCP_REGISTRY_TAGS: "on" asks any registry, "loopback" (the test suite's) only one on this host, "off" none."""
    mode = settings.CCP_REGISTRY_TAGS
    return mode == "on" or (mode == "loopback" and is_loopback(host))


def tags_url(host: str, repository: str) -> str:
    return f"{'http' if is_loopback(host) else 'https'}://{host}/v2/{repository}/tags/list"


def _fetch(url: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=settings.CCP_REGISTRY_TAGS_TIMEOUT) as response:  # noqa: S310 - http(s) only
        return [str(tag) for tag in json.load(response).get("tags") or []]


def missing_from_registry(images: list[str]) -> list[tuple[str, list[str]]]:
    """(image, the tags its repository has) for each image whose tag the registry does not list, asked now
    (not from the cache: this explains a failed pull). Images whose registry does not answer are left out:
    only what the registry says is reported."""
    missing = []
    for image in images:
        split = split_image(image)
        match = TAG_SUFFIX_RE.search(image.split("@", 1)[0])
        if split is None or match is None or "@" in image or not may_ask(split[0]):
            continue
        try:
            tags = _fetch(tags_url(*split))
        except (OSError, ValueError, urllib.error.URLError):
            continue
        if match.group(1) not in tags:
            missing.append((image, sorted(tags, key=version_key, reverse=True)))
    return missing


def version_key(tag: str) -> tuple:
    match = VERSION_TAG_RE.match(tag)
    return (1, tuple(int(part) for part in match.group(1).split(".")), tag) if match else (0, (), tag)


def is_downgrade(current: str, target: str) -> bool:
    """Both look like versions (v1, 2.3.0) and the target is older."""
    a, b = VERSION_TAG_RE.match(current or ""), VERSION_TAG_RE.match(target or "")
    return bool(a and b) and version_key(target)[1] < version_key(current)[1]


def instance_image_repositories(instance) -> list[tuple[str, str]]:
    """(registry host, repository) of every image the instance's compose file names (default release)."""
    _, template_set, files = instance_render(instance=instance)
    compose = yaml.safe_load(files[template_set.compose_file].content) or {}
    found = []
    for service in (compose.get("services") or {}).values():
        split = split_image(str((service or {}).get("image") or ""))
        if split and split not in found:
            found.append(split)
    return found


def registry_tags(instance) -> RegistryTags:
    """Tags the registry has for the instance's images (those every image has), newest version first."""
    try:
        repositories = instance_image_repositories(instance)
    except CCPError as error:
        return RegistryTags(problem=error.message)
    if not repositories:
        return RegistryTags(problem="The compose file names no image in a registry; type the tag.")
    common: set[str] | None = None
    for host, repository in repositories:
        if not may_ask(host):
            return RegistryTags(
                repositories=[f"{h}/{r}" for h, r in repositories],
                problem=f"Listing the tags of {host} is off here (CCP_REGISTRY_TAGS); type the tag.",
            )
        url = tags_url(host, repository)
        tags = cache.get(f"registry-tags:{url}")
        if tags is None:
            try:
                tags = _fetch(url)
            except (OSError, ValueError, urllib.error.URLError) as error:
                return RegistryTags(
                    repositories=[f"{h}/{r}" for h, r in repositories],
                    problem=f"The registry {host} did not list the tags of {repository} ({error}); type the tag.",
                )
            cache.set(f"registry-tags:{url}", tags, settings.CCP_REGISTRY_TAGS_CACHE_SECONDS)
        common = set(tags) if common is None else common & set(tags)
    return RegistryTags(
        tags=sorted(common or (), key=version_key, reverse=True), repositories=[f"{h}/{r}" for h, r in repositories]
    )

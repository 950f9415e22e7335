"""Health of an instance: probe its health URLs from the node itself, and read what its containers run."""

import time

from django.utils import timezone

from .drivers import driver_for
from .node_commands import compose_ps


def probe_url(driver, url: str) -> tuple[bool, str]:
    """One GET of `url` from the node (curl, or wget where there is no curl). (ok, output)."""
    # --globoff: [] and {} in a URL are not curl ranges; --proto: http(s) only, redirects included.
    result = driver.run(["curl", "--globoff", "--proto", "=http,https", "--proto-redir", "=http,https", "--fail",
                         "--silent", "--show-error", "--max-time", "5", url], timeout=15)
    if result.exit_code == 127:  # wget neither globs nor speaks other schemes than http(s) and ftp
        result = driver.run(["wget", "-q", "-O", "-", "-T", "5", "--", url], timeout=15)
    return result.exit_code == 0, (result.stdout + result.stderr).decode(errors="replace")


def probe_until_healthy(driver, urls: list[str], *, within: float) -> tuple[list[str], str]:
    """Probe until every URL answers or `within` seconds pass. Returns (failing URLs, last output)."""
    deadline = time.monotonic() + within
    pending, last = list(urls), ""
    while True:
        for url in list(pending):
            ok, last = probe_url(driver, url)
            if ok:
                pending.remove(url)
        if not pending or time.monotonic() >= deadline:
            return pending, last
        time.sleep(1)


def health_urls_of(instance) -> list[str]:
    if instance.health_urls:
        return list(instance.health_urls)
    from .context import template_set_for

    return template_set_for(instance).health_urls(instance.ports, instance.profile_list)


def running_tags(driver, instance) -> set[str]:
    """The image tags the instance's containers run now."""
    rows = compose_ps(driver, instance)
    return {row.get("Image", "").rsplit(":", 1)[-1] for row in rows if ":" in row.get("Image", "")}


def instance_check_health(*, instance) -> dict:
    """Probe the health URLs once (no retries) and record health and the running image tag."""
    from .services import instance_record_observation

    driver = driver_for(instance.node)
    failing, last = probe_until_healthy(driver, health_urls_of(instance), within=0)
    tags = running_tags(driver, instance)
    version = tags.pop() if len(tags) == 1 else None
    instance_record_observation(instance=instance, version=version, healthy=not failing)
    return {"instance": instance.slug, "healthy": not failing, "failing": failing, "version": version,
            "detail": last.strip()[-300:] if failing else "", "checked_at": timezone.now().isoformat()}




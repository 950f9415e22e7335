"""Health of an instance: probe its health URLs from the node itself, and read what its containers run."""

import time

from django.utils import timezone

from .commands.http_probe import is_probeable, parse_probe, probe_argv
from .context import template_set_for
from .drivers import driver_for
from .node_queries import compose_ps
from .services import instance_record_observation

# Seconds between two rounds of probes while waiting for a stack to become healthy.
POLL_SECONDS = 0.3


def probe_urls(driver, urls: list[str]) -> dict[str, tuple[bool, str]]:
    """One GET of every URL from the node, all at once, in one remote command."""
    refused = {
        url: (False, f"{url} is not an http or https URL; it is not probed.") for url in urls if not is_probeable(url)
    }
    probed = [url for url in urls if is_probeable(url)]
    results = {}
    if probed:
        result = driver.run(probe_argv(probed), timeout=30)
        results = parse_probe(result.stdout, probed)
    return {url: refused.get(url) or results[url] for url in urls}


def probe_until_healthy(
    driver, urls: list[str], *, within: float, interval: float = POLL_SECONDS
) -> tuple[list[str], str]:
    """Probe until every URL answers or `within` seconds pass. Returns (failing URLs, last output)."""
    deadline = time.monotonic() + within
    pending, last = list(urls), ""
    while pending:
        results = probe_urls(driver, pending)
        for url in list(pending):
            ok, output = results[url]
            if ok:
                pending.remove(url)
            else:
                last = output
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return pending, last


def health_urls_of(instance) -> list[str]:
    if instance.health_urls:
        return list(instance.health_urls)
    return template_set_for(instance).health_urls(instance.ports, instance.profile_list)


def running_tags(driver, instance) -> set[str]:
    """The image tags the instance's containers run now."""
    rows = compose_ps(driver, instance)
    return {row.get("Image", "").rsplit(":", 1)[-1] for row in rows if ":" in row.get("Image", "")}


def instance_check_health(*, instance) -> dict:
    """Probe the health URLs once (no retries) and record health and the running image tag."""
    driver = driver_for(instance.node)
    failing, last = probe_until_healthy(driver, health_urls_of(instance), within=0)
    tags = running_tags(driver, instance)
    version = tags.pop() if len(tags) == 1 else None
    error = f"{failing[0]} did not answer: {last.strip()[-300:] or 'no output'}" if failing else ""
    instance_record_observation(instance=instance, version=version, healthy=not failing, error=error)
    return {
        "instance": instance.slug,
        "healthy": not failing,
        "failing": failing,
        "version": version,
        "detail": last.strip()[-300:] if failing else "",
        "checked_at": timezone.now().isoformat(),
    }

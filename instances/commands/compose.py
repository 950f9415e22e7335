"""`docker compose` command lines for an instance's project, and the parsers of their output (pure).
Run them with cwd=instance.install_dir."""

import json


def project_name(instance) -> str:
    return instance.compose_project or instance.slug


def compose_argv(instance, *args: str) -> list[str]:
    """`docker compose` for the instance's project."""
    return ["docker", "compose", "--project-name", project_name(instance), *args]


def version_argv() -> list[str]:
    return ["docker", "compose", "version", "--short"]


def ps_argv(instance, *, include_stopped: bool = False) -> list[str]:
    args = ["ps", "--all", "--format", "json"] if include_stopped else ["ps", "--format", "json"]
    return compose_argv(instance, *args)


def parse_ps(stdout: bytes) -> list[dict]:
    """One dict per container (Service, Image, State, Health, ID): compose v2 prints one JSON object
    a line, older versions one JSON array."""
    text = stdout.decode().strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def config_argv(instance) -> list[str]:
    """The project's resolved model (.env interpolated, inactive profiles left out)."""
    return compose_argv(instance, "config", "--format", "json")


def parse_config(stdout: bytes) -> dict:
    return json.loads(stdout.decode())

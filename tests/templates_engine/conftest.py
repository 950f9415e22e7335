"""Fixtures for the template engine tests: the shipped sets, and the compose CLI where there is one."""

import os

import pytest

from templates_engine import TemplateSet, load_template_set

from .helpers import DEPLOY_ROOT, find_compose_cli


@pytest.fixture
def campaign() -> TemplateSet:
    return load_template_set(DEPLOY_ROOT, "campaign")


@pytest.fixture
def testbed() -> TemplateSet:
    return load_template_set(DEPLOY_ROOT, "testbed")


@pytest.fixture(scope="session")
def compose_cli() -> list[str]:
    command, reason = find_compose_cli()
    if command is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}: install the compose v2 plugin (see DESIGN.md §10).")
        pytest.skip(f"{reason}; compose validation needs the compose v2 plugin (DESIGN.md §10).")
    return command

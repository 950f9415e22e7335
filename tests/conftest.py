"""Shared fixtures: users in the two fleet groups, API clients, and factories for nodes and instances."""

import itertools

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType

from instances.groups import OPERATORS, VIEWERS
from instances.models import Instance, Node
from instances.services import instance_save
from tests.helpers import api_client_for, make_user

pytest_plugins = ["tests.testbed.fixtures"]

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def fresh_content_types():
    """A transactional test's flush recreates the content types under new ids: the audit log (and anything
    else that asks for a model's content type) must not use the ids Django cached before it."""
    ContentType.objects.clear_cache()
    yield
    ContentType.objects.clear_cache()


@pytest.fixture
def viewer(db) -> User:
    return make_user("viewer", VIEWERS)


@pytest.fixture
def operator(db) -> User:
    return make_user("operator", OPERATORS)


@pytest.fixture
def superuser(db) -> User:
    return make_user("root-admin", is_superuser=True)


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated with a token of that user (None: anonymous)."""
    return api_client_for


@pytest.fixture
def make_node(db):
    def make(**fields) -> Node:
        n = next(_counter)
        values = {"name": f"node-{n}", "address": "127.0.0.1", "driver": "local", **fields}
        node = Node(**values)
        node.full_clean()
        node.save()
        return node

    return make


@pytest.fixture
def make_instance(db, make_node):
    def make(node: Node | None = None, **fields) -> Instance:
        n = next(_counter)
        node = node or make_node()
        values = {
            "name": f"Tenant {n}",
            "slug": f"tenant-{n}",
            "install_dir": f"/srv/ccp/tenant-{n}",
            "ports": {"http": 20000 + n},
            **fields,
        }
        return instance_save(instance=Instance(node=node, **values))

    return make

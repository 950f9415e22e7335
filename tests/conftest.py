"""Shared fixtures: users in the two fleet groups, API clients, and factories for nodes and instances."""

import itertools

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from instances.groups import OPERATORS, VIEWERS, sync_fleet_groups
from instances.models import Instance, Node

pytest_plugins = ["tests.testbed.fixtures"]

_counter = itertools.count(1)


def _user(username: str, group: str | None = None, **extra) -> User:
    user = User.objects.create_user(username, password="pw-" + username, is_staff=True, **extra)
    if group:
        if not Group.objects.filter(name=group).exists():  # a transactional test flushed the migration's rows
            from django.apps import apps

            sync_fleet_groups(apps)
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def viewer(db) -> User:
    return _user("viewer", VIEWERS)


@pytest.fixture
def operator(db) -> User:
    return _user("operator", OPERATORS)


@pytest.fixture
def superuser(db) -> User:
    return _user("root-admin", is_superuser=True)


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


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
        from instances.services import instance_save

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

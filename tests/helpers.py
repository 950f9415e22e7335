"""Helpers every test package may use: staff users in the fleet groups, API clients."""

from django.apps import apps
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from instances.groups import sync_fleet_groups


def make_user(username: str, group: str | None = None, **extra) -> User:
    user = User.objects.create_user(username, password="pw-" + username, is_staff=True, **extra)
    if group:
        if not Group.objects.filter(name=group).exists():  # a transactional test flushed the migration's rows
            sync_fleet_groups(apps)
        user.groups.add(Group.objects.get(name=group))
    return user


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client

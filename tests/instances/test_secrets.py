"""Secrets are encrypted at rest, generated for panel-provisioned instances, and survive key rotation."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from instances.context import secret_names
from instances.models import Instance, Node, NotificationTarget

pytestmark = pytest.mark.django_db


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - fixed names
        return cursor.fetchone()[0]


def test_new_instance_gets_strong_secrets_for_every_name_of_the_set(make_instance):
    instance = make_instance()
    values = Instance.objects.get(pk=instance.pk).get_secrets()
    assert sorted(values) == sorted(secret_names())
    assert all(len(v) >= 32 for v in values.values())
    assert len(set(values.values())) == len(values)


def test_registered_instance_gets_no_generated_secrets(make_instance):
    assert make_instance(is_registered=True).get_secrets() == {}


def test_database_column_holds_no_plaintext(make_instance, make_node):
    instance = make_instance()
    raw = raw_column("instances_instance", "secrets_encrypted", instance.pk)
    for name, value in instance.get_secrets().items():
        assert value not in raw and name not in raw
    node = make_node()
    node.set_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\nsecretmaterial\n-----END OPENSSH PRIVATE KEY-----")
    node.save()
    raw_key = raw_column("instances_node", "ssh_private_key_encrypted", node.pk)
    assert "secretmaterial" not in raw_key and "PRIVATE KEY" not in raw_key
    assert "secretmaterial" in Node.objects.get(pk=node.pk).get_private_key()


def test_rotation_keeps_every_secret_readable_under_the_new_key_only(make_instance, make_node, settings):
    instance = make_instance()
    before = instance.get_secrets()
    node = make_node()
    node.set_private_key("PRIVATE-KEY-MATERIAL")
    node.save()
    target = NotificationTarget(name="ops")
    target.set_url("json://hooks.example.org/ccp/TOKEN-MATERIAL")
    target.save()
    old_keys = list(settings.CCP_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()

    settings.CCP_ENCRYPTION_KEYS = [new_key, *old_keys]
    call_command("rotate_encryption_key")

    settings.CCP_ENCRYPTION_KEYS = [new_key]
    assert Instance.objects.get(pk=instance.pk).get_secrets() == before
    assert Node.objects.get(pk=node.pk).get_private_key().strip() == "PRIVATE-KEY-MATERIAL"
    assert NotificationTarget.objects.get(pk=target.pk).get_url() == "json://hooks.example.org/ccp/TOKEN-MATERIAL"
    # and the old key alone can no longer read them
    raw = raw_column("instances_instance", "secrets_encrypted", instance.pk)
    with pytest.raises(InvalidToken):
        Fernet(old_keys[0].encode()).decrypt(raw.encode())

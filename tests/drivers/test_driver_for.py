"""`driver_for(node)`: the right driver for a Node row, pooled, pinning the host key on first contact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from instances.drivers import HostKeyMismatch, LocalDriver, SSHDriver, close_all, driver_for
from instances.models import Node
from tests.testbed.sshd import SSHNode, generate_key

pytestmark = [pytest.mark.testbed, pytest.mark.django_db]

UNPINNED = {"host_key_type": "", "host_key_base64": "", "host_key_fingerprint": "", "host_key_pinned_at": None}


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    close_all()
    yield
    close_all()


def test_first_contact_pins_the_node_row(make_node, ssh_node: SSHNode) -> None:
    node = make_node(**ssh_node.node_fields())

    driver_for(node).run(["true"], check=True)

    expected = (*ssh_node.host_key, ssh_node.host_key_fingerprint)
    assert (node.host_key_type, node.host_key_base64, node.host_key_fingerprint) == expected
    node.refresh_from_db()
    assert (node.host_key_type, node.host_key_base64, node.host_key_fingerprint) == expected
    assert node.host_key_pinned_at is not None


def test_all_steps_share_one_connection(make_node, ssh_node: SSHNode) -> None:
    node = make_node(**ssh_node.node_fields())
    first = driver_for(node)
    first.run(["true"], check=True)

    again = driver_for(Node.objects.get(pk=node.pk))

    assert again is first
    assert isinstance(again, SSHDriver) and again.connect() is first.connect()


def test_a_stored_key_is_preferred_to_the_key_file(make_node, ssh_node: SSHNode, tmp_path: Path, settings) -> None:
    settings.CCP_SSH_KEY_DIR = str(tmp_path)
    node = make_node(**{**ssh_node.node_fields(), "ssh_key_path": str(tmp_path / "missing-key")})
    node.set_private_key(ssh_node.client_key)
    node.save()

    assert driver_for(node).run(["id", "-un"], check=True).stdout == f"{ssh_node.user}\n".encode()


def test_a_changed_host_key_is_refused_until_re_pinned(make_node, ssh_node_factory, node_workdir: Path) -> None:
    remote: SSHNode = ssh_node_factory()
    node = make_node(**remote.node_fields())
    driver_for(node).run(["true"], check=True)
    remote.restart_with_new_host_key()
    proof = node_workdir / "ran"

    with pytest.raises(HostKeyMismatch):
        driver_for(Node.objects.get(pk=node.pk)).run(["touch", str(proof)])
    assert not proof.exists()

    Node.objects.filter(pk=node.pk).update(**UNPINNED)  # a staff member re-pins
    repinned = Node.objects.get(pk=node.pk)
    driver_for(repinned).run(["touch", str(proof)], check=True)

    assert proof.exists()
    repinned.refresh_from_db()
    assert repinned.host_key_fingerprint == remote.host_key_fingerprint


def test_a_first_contact_race_lost_to_another_key_is_refused(make_node, ssh_node: SSHNode, tmp_path: Path) -> None:
    stale = make_node(**ssh_node.node_fields())
    generate_key(tmp_path / "other", "other host")
    other_type, other_base64 = (tmp_path / "other.pub").read_text().split()[:2]
    # Another worker pinned a different key between our read of the row and our first contact.
    Node.objects.filter(pk=stale.pk).update(
        host_key_type=other_type, host_key_base64=other_base64, host_key_fingerprint="SHA256:other"
    )

    with pytest.raises(HostKeyMismatch):
        driver_for(stale).run(["true"])

    assert Node.objects.get(pk=stale.pk).host_key_base64 == other_base64


def test_a_local_node(make_node, node_workdir: Path) -> None:
    driver = driver_for(make_node(driver="local"))

    assert isinstance(driver, LocalDriver)
    assert driver.run(["ls", str(node_workdir)], check=True).ok

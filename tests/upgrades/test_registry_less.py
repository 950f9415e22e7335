"""Registry-less nodes (issue 10, item 5), proven on a node with a docker engine of its own: images go
from where they are (the panel host's engine, or a node named as the image source), an image the node
already has by ID is not sent again, progress is counted in bytes, and no registry is asked."""

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from instances.drivers import close_all
from instances.models import Instance, Node
from tests.testbed.tenant import copy_image, provision, tenant_create, testbed_ports
from upgrades.choices import UpgradeStatus

from .handmade import public_registry_mentions
from .helpers import quick, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]
DOCKER = shutil.which("docker") or "/usr/bin/docker"
PATH = os.environ["PATH"]


def panel_id(image: str) -> str | None:
    found = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True)
    return found.stdout.strip() or None


def in_registry(docker_engine, tag: str) -> bool:
    url = f"http://{docker_engine.registry}/v2/ccp-test/app/manifests/{tag}"
    request = urllib.request.Request(
        url, method="HEAD", headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback registry
            return True
    except urllib.error.HTTPError:
        return False


def build_on(docker_host: str | None, image: str, base: str) -> None:
    """`FROM base` plus a label unique to this run, built on one engine (no registry involved)."""
    argv = ["docker", *(["--host", docker_host] if docker_host else []), "build", "-q", "-t", image, "-"]
    built = subprocess.run(
        argv,
        input=f"FROM {base}\nLABEL org.ccp.test={uuid.uuid4().hex}\n",
        text=True,
        capture_output=True,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"},
    )
    assert built.returncode == 0, built.stderr


@pytest.fixture
def engine_node(db, engine_ssh_node) -> Node:
    node = Node(
        name=f"own-{uuid.uuid4().hex[:6]}",
        instance_root="/srv/ccp-testbed",
        registry_access=False,
        **engine_ssh_node.node_fields(),
    )
    node.full_clean()
    node.save()
    yield node
    close_all()


@pytest.fixture
def engine_tenant(engine_node, testbed_release, node_workdir_factory, node_engine, docker_engine, settings):
    """A registered tenant at v1 on the node with its own engine (v1 was loaded there by hand)."""
    settings.CCP_HEALTH_TIMEOUT = 20
    slug = f"e{uuid.uuid4().hex[:8]}"
    tenant = tenant_create(
        node=engine_node,
        path=node_workdir_factory(),
        slug=slug,
        compose_project=f"ccp-{slug}",
        ports=testbed_ports(),
        docker_host=node_engine,
    )
    instance = tenant.instance
    copy_image(docker_engine.image("v1"), to_host=node_engine)
    provision(tenant, tag="v1")
    Instance.objects.filter(pk=instance.pk).update(is_registered=True)
    tenant.instance.refresh_from_db()
    yield tenant
    tenant.remove_containers()


def test_5_an_image_tagged_only_on_the_panel_host_is_shipped_once_by_id(
    engine_tenant, celery_worker_thread, docker_engine
):
    tenant = engine_tenant
    tag, again = f"local-{uuid.uuid4().hex[:6]}", f"local-{uuid.uuid4().hex[:6]}"
    image = docker_engine.image(tag)
    # Built on the panel host (v2 plus a label of this run): an ID no registry and no node has.
    build_on(None, image, docker_engine.image("v2"))
    assert not in_registry(docker_engine, tag) and tenant.image_id(image) is None
    assert tenant.image_id(panel_id(image)) is None
    try:
        upgrade = wait_final(quick(tenant, tag))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        wanted = panel_id(image)
        assert tenant.image_id(image) == wanted  # it reached the node's own engine
        assert set(tenant.running_image_ids().values()) == {wanted} and tenant.all_healthy()
        assert tenant.served_versions() == {"v2"}
        pull = upgrade.steps.get(name="pull images").output
        sent = re.search(rf"{re.escape(image)}: shipped (\d+) bytes from the panel host", pull)
        assert sent and int(sent.group(1)) > 1_000_000, pull
        assert "pulling" not in pull and public_registry_mentions(upgrade) == []
        # the panel host's engine runs nothing of this tenant: the containers are on the node's engine
        label = f"label=com.docker.compose.project={tenant.instance.compose_project}"
        assert (
            subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True).stdout.split()
            == []
        )
        assert len(tenant.project_container_names()) == 3

        # The same image under another tag: the node has that ID already, nothing is transferred.
        subprocess.run(["docker", "tag", image, docker_engine.image(again)], check=True)
        second = wait_final(quick(tenant, again))
        assert second.status == UpgradeStatus.SUCCEEDED, second.error
        output = second.steps.get(name="pull images").output
        assert (
            f"{docker_engine.image(again)}: the node already has {wanted.removeprefix('sha256:')[:12]}; "
            "nothing transferred"
            in output
            and "shipped" not in output
        )
        assert tenant.image_id(docker_engine.image(again)) == wanted
    finally:
        tenant.remove_containers()  # first: an image a container uses is only untagged
        subprocess.run(["docker", "image", "rm", "--force", image, docker_engine.image(again)], capture_output=True)
        tenant.docker("image", "rm", "--force", image, docker_engine.image(again))


def test_5_an_image_only_the_source_node_has_is_shipped_from_that_node(
    make_tenant, engine_node, celery_worker_thread, docker_engine, node_engine
):
    # Built on the node with its own engine (FROM the app, plus a label): no registry, not the panel host.
    tag = f"built-{uuid.uuid4().hex[:6]}"
    image = docker_engine.image(tag)
    copy_image(docker_engine.image("v1"), to_host=node_engine)
    build_on(node_engine, image, docker_engine.image("v1"))
    tenant = make_tenant()  # on a node that shares the panel host's engine
    Node.objects.filter(pk=tenant.node.pk).update(registry_access=False, image_source=engine_node)
    tenant.node.refresh_from_db()
    assert panel_id(image) is None and not in_registry(docker_engine, tag)
    try:
        upgrade = wait_final(quick(tenant, tag))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        wanted = subprocess.run(
            ["docker", "--host", node_engine, "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert panel_id(image) == wanted and set(tenant.running_image_ids().values()) == {wanted}
        pull = upgrade.steps.get(name="pull images").output
        assert re.search(rf"{re.escape(image)}: shipped \d+ bytes from node {engine_node.name}", pull), pull
        assert public_registry_mentions(upgrade) == []
    finally:
        tenant.remove_containers()
        subprocess.run(["docker", "image", "rm", "--force", image], capture_output=True)
        subprocess.run(["docker", "--host", node_engine, "image", "rm", "--force", image], capture_output=True)


def test_5_an_image_only_the_node_itself_has_is_used_as_it_is(
    engine_tenant, celery_worker_thread, docker_engine, node_engine
):
    tenant = engine_tenant
    tag = f"onnode-{uuid.uuid4().hex[:6]}"
    image = docker_engine.image(tag)
    build_on(node_engine, image, docker_engine.image("v1"))  # built on the node by hand
    try:
        upgrade = wait_final(quick(tenant, tag))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        pull = upgrade.steps.get(name="pull images").output
        assert f"{image}: only the node has it" in pull and "pulling" not in pull
        assert panel_id(image) is None  # nothing was pulled on the panel host
        assert set(tenant.running_image_ids().values()) == {tenant.image_id(image)}
    finally:
        tenant.remove_containers()
        tenant.docker("image", "rm", "--force", image)


def test_5_a_service_pinned_by_digest_is_refused_with_a_sentence(engine_tenant, celery_worker_thread, docker_engine):
    # `docker load` brings an image's ID, never the registry digest it was pulled by: a node without
    # registry access can never run `image: repo@sha256:…`. Say so before touching anything that runs.
    tenant = engine_tenant
    digest = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", docker_engine.image("v1")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(
        compose.read_text().replace("image: " + docker_engine.image("${IMAGE_TAG:-v1}"), "image: " + digest, 1)
    )
    assert tenant.compose("up", "-d", "--wait").returncode == 0
    # The testbed's node engine can reach the loopback registry, which a registry-less node cannot:
    # forget the digest it pulled by (the image stays, tagged v1), as if v1 had been loaded by hand.
    assert tenant.docker("image", "rm", "--force", digest).returncode == 0  # the v1 tag keeps the image
    assert tenant.image_id(digest) is None and tenant.image_id(docker_engine.image("v1"))
    env_before = tenant.env()

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status in (UpgradeStatus.FAILED, UpgradeStatus.ROLLED_BACK), upgrade.error
    assert f"{digest} is pinned by digest" in upgrade.error and "registry access" in upgrade.error
    assert "docker image tag" not in upgrade.error
    assert tenant.env() == env_before
    assert "shipped" not in upgrade.steps.get(name="pull images").output


@pytest.fixture
def worker_without_docker(monkeypatch, tmp_path):
    """Call it once the test's set-up is done: from then on the worker's PATH holds every command it
    had but docker, as on a worker host with no engine."""
    bin_dir = tmp_path / "bin-without-docker"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = bin_dir / name
            if name.startswith("docker") or target.exists() or target.is_symlink():
                continue
            target.symlink_to(os.path.join(folder, name))

    def take_docker_away() -> None:
        monkeypatch.setenv("PATH", str(bin_dir))
        assert shutil.which("docker") is None and shutil.which("sh") is not None

    yield take_docker_away
    monkeypatch.undo()  # before the other fixtures clean up with docker


def docker_at(host: str | None, *args: str) -> str:
    """The test's own docker (by absolute path: the worker's PATH has none)."""
    argv = [DOCKER, *(["--host", host] if host else []), *args]
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip()


def test_14_a_worker_without_docker_ships_from_the_source_node_over_ssh(
    make_tenant, engine_node, celery_worker_thread, docker_engine, node_engine, worker_without_docker
):
    tag = f"nodock-{uuid.uuid4().hex[:6]}"
    image = docker_engine.image(tag)
    copy_image(docker_engine.image("v1"), to_host=node_engine)
    build_on(node_engine, image, docker_engine.image("v1"))
    tenant = make_tenant()  # on a node that shares the panel host's engine, reached over SSH
    Node.objects.filter(pk=tenant.node.pk).update(registry_access=False, image_source=engine_node)
    tenant.node.refresh_from_db()
    assert docker_at(None, "image", "inspect", "--format", "{{.Id}}", image) == ""
    worker_without_docker()
    try:
        upgrade = wait_final(quick(tenant, tag))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        wanted = docker_at(node_engine, "image", "inspect", "--format", "{{.Id}}", image)
        assert wanted and docker_at(None, "image", "inspect", "--format", "{{.Id}}", image) == wanted
        pull = upgrade.steps.get(name="pull images").output
        assert re.search(rf"{re.escape(image)}: shipped \d+ bytes from node {engine_node.name}", pull), pull
        assert "panel host" not in pull and public_registry_mentions(upgrade) == []
    finally:
        os.environ["PATH"] = PATH
        tenant.remove_containers()
        docker_at(None, "image", "rm", "--force", image)
        docker_at(node_engine, "image", "rm", "--force", image)


def test_14_a_worker_without_docker_says_where_to_put_an_image_no_node_has(
    make_tenant, engine_node, celery_worker_thread, docker_engine, worker_without_docker
):
    tag = f"nowhere-{uuid.uuid4().hex[:6]}"
    tenant = make_tenant()
    Node.objects.filter(pk=tenant.node.pk).update(registry_access=False, image_source=engine_node)
    tenant.node.refresh_from_db()
    worker_without_docker()
    upgrade = wait_final(quick(tenant, tag))
    os.environ["PATH"] = PATH
    assert upgrade.status != UpgradeStatus.SUCCEEDED
    assert "this worker has no docker to pull it with" in upgrade.error, upgrade.error
    assert f"Load it on {engine_node.name}" in upgrade.error

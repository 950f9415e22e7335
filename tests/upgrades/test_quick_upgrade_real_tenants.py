"""Quick upgrades of tenants made by hand (issue 10, items 1–4): the result is read from the node
(image IDs the containers run, file bytes, link status), never only from CCP's records."""

import os
import stat
import subprocess
import uuid

import pytest

from tests.testbed.tenant import free_port
from upgrades.choices import UpgradeStatus

from .handmade import add_built_service, chown_like_parent, handwritten_env, public_registry_mentions
from .helpers import quick, registry_id, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def test_1_duplicate_image_tag_lines_the_last_one_is_changed(make_tenant, celery_worker_thread, docker_engine):
    tenant = make_tenant(registered=True)
    # IMAGE_TAG twice: compose uses the last one (v3), which is what runs.
    before = handwritten_env(tenant, tag_lines=("IMAGE_TAG=v1", "IMAGE_TAG=v3  # moved to v3 by hand"))
    assert tenant.compose("up", "-d", "--wait").returncode == 0
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v3")}

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v2")}
    assert tenant.served_versions() == {"v2"}
    # Only the value compose reads changed: the first line, comments and the rest are byte-identical.
    assert tenant.env() == before.replace(b"IMAGE_TAG=v3  # moved", b"IMAGE_TAG=v2  # moved")
    step = upgrade.steps.get(name="set IMAGE_TAG in .env")
    assert "IMAGE_TAG is set on lines 3 and 13" in step.output and "uses the last one" in step.output
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v2"


def test_2_a_container_that_does_not_run_the_target_image_fails_and_rolls_back(
    make_tenant, celery_worker_thread, docker_engine, after_up
):
    tenant = make_tenant(registered=True)
    handwritten_env(tenant)

    def something_puts_web_back_on_v1(ctx):
        # What the tenant's own watchdog (or a stale override) does: web is recreated on the old image.
        env = {**os.environ, "IMAGE_TAG": "v1"}
        subprocess.run(
            [
                "docker",
                "compose",
                "--project-name",
                tenant.instance.compose_project,
                "up",
                "-d",
                "--no-deps",
                "--wait",
                "web",
            ],
            cwd=tenant.path,
            env=env,
            check=True,
            capture_output=True,
        )

    after_up(something_puts_web_back_on_v1)
    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.ROLLED_BACK
    v1, v2 = registry_id(docker_engine, "v1"), registry_id(docker_engine, "v2")
    assert (
        f"web runs {v1.removeprefix('sha256:')[:12]}, but" in upgrade.error
        and v2.removeprefix("sha256:")[:12] in upgrade.error
    )
    assert set(tenant.running_image_ids().values()) == {v1} and tenant.all_healthy()
    assert b"IMAGE_TAG=v1  # pinned by ops\n" in tenant.env()
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v1"  # what was observed, not what was intended
    assert not upgrade.steps.filter(name="record version").exists()


def test_3_a_symlinked_env_with_a_comment_keeps_its_link_its_comment_and_its_mode(
    make_tenant, celery_worker_thread, docker_engine
):
    tenant = make_tenant(registered=True)
    handwritten_env(tenant)
    shared = tenant.path.parent / f"shared-{uuid.uuid4().hex[:6]}"
    shared.mkdir()
    real = shared / "tenant.env"
    os.replace(tenant.path / ".env", real)
    real.chmod(0o640)
    (tenant.path / ".env").symlink_to(os.path.relpath(real, tenant.path))
    chown_like_parent(shared, real, tenant.path / ".env")
    before = real.read_bytes()
    try:
        upgrade = wait_final(quick(tenant, "v3"))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        link = tenant.path / ".env"
        assert link.is_symlink() and os.readlink(link) == os.path.relpath(real, tenant.path)
        assert real.read_bytes() == before.replace(b"IMAGE_TAG=v1  # pinned by ops", b"IMAGE_TAG=v3  # pinned by ops")
        assert stat.S_IMODE(real.stat().st_mode) == 0o640
        assert sorted(p.name for p in shared.iterdir()) == ["tenant.env"]  # no temp file left beside it
        assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v3")}
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=False)


def test_4_a_service_built_on_the_node_is_built_there_and_no_registry_is_asked(
    make_tenant, celery_worker_thread, docker_engine
):
    tenant = make_tenant(registered=True)
    handwritten_env(tenant)
    image = f"ccp-built-{tenant.instance.slug}/app"  # a name no registry has
    add_built_service(tenant, image=image, port=free_port())
    assert tenant.compose("up", "-d", "--build", "--wait").returncode == 0
    assert tenant.image_id(f"{image}:v1") and tenant.image_id(f"{image}:v2") is None
    try:
        upgrade = wait_final(quick(tenant, "v2"))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        assert public_registry_mentions(upgrade) == []
        pull = upgrade.steps.get(name="pull images").output
        assert f"builder: built {image}:v2" in pull
        assert f"naming to {image}:v2" in pull  # compose build's own output is in the step
        built = tenant.image_id(f"{image}:v2")
        running = tenant.running_image_ids()
        assert built and running["builder"] == built  # the tag it did not have was built on the node
        assert {running[s] for s in ("web", "api", "docs")} == {registry_id(docker_engine, "v2")}
        assert tenant.all_healthy()

        # Again to the same tag: the built image is there, so nothing is rebuilt.
        again = wait_final(quick(tenant, "v2"))
        assert again.status == UpgradeStatus.SUCCEEDED and public_registry_mentions(again) == []
        assert tenant.running_image_ids()["builder"] == built
    finally:
        tenant.remove_containers()
        subprocess.run(["docker", "image", "rm", "--force", f"{image}:v1", f"{image}:v2"], capture_output=True)


ONE_SHOT_COMPOSE = """
  # A one-shot job (migrations, an asset build) run by every `up`: it completes and exits 0.
  migrate:
    image: {image}
    network_mode: host
    entrypoint: ["/bin/busybox", "true"]
"""


def test_a_one_shot_service_that_exits_0_does_not_fail_the_upgrade(make_tenant, celery_worker_thread, docker_engine):
    # `up --wait` exits 1 with "container … exited (0)" for a job that completed: that is not a failure.
    tenant = make_tenant(registered=True)
    handwritten_env(tenant)
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(
        compose.read_text().rstrip("\n") + "\n" + ONE_SHOT_COMPOSE.format(image=docker_engine.image("${IMAGE_TAG:-v1}"))
    )
    by_hand = tenant.compose("up", "-d", "--wait", "--wait-timeout", "60")
    assert by_hand.returncode != 0 and "exited (0)" in by_hand.stderr  # the premise: compose calls it an error

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    v2 = registry_id(docker_engine, "v2")
    assert tenant.running_image_ids() == {"web": v2, "api": v2, "docs": v2, "migrate": v2}
    states = {c["Service"]: (c["State"], c["ExitCode"]) for c in tenant.containers()}
    assert states["migrate"] == ("exited", 0) and states["web"][0] == "running"
    assert "migrate ran" in upgrade.steps.get(name="verify running images").output
    tenant.instance.refresh_from_db()
    assert tenant.instance.observed_version == "v2"

    # Again to the same tag: already there, nothing recreated (the completed job included).
    ids = tenant.container_ids()
    again = wait_final(quick(tenant, "v2"))
    assert again.status == UpgradeStatus.SUCCEEDED, again.error
    assert tenant.container_ids() == ids
    assert "already running v2" in again.steps.get(name="compare with the running version").output
    assert again.steps.get(name="start containers (up -d --wait)").status == "skipped"


def test_image_tag_only_as_a_compose_default_is_recorded_as_what_runs(make_tenant, celery_worker_thread, docker_engine):
    # The compose file says ${IMAGE_TAG:-v1} and the hand-made .env never sets it: v1 runs.
    tenant = make_tenant(registered=True)
    before = handwritten_env(tenant, tag_lines=("# IMAGE_TAG comes from the compose default",))
    assert tenant.compose("up", "-d", "--wait").returncode == 0
    v1 = registry_id(docker_engine, "v1")
    assert set(tenant.running_image_ids().values()) == {v1}

    failed = wait_final(quick(tenant, "broken"))

    assert failed.status == UpgradeStatus.ROLLED_BACK, failed.error
    assert tenant.env() == before and set(tenant.running_image_ids().values()) == {v1}
    tenant.instance.refresh_from_db()
    assert failed.from_version == "v1" and tenant.instance.observed_version == "v1"  # what runs, not ""

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert tenant.env() == before + b"IMAGE_TAG=v2\n"
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v2")}
    assert upgrade.from_version == "v1"


def test_env_through_a_chain_of_links_and_a_linked_folder_changes_the_real_file(
    make_tenant, celery_worker_thread, docker_engine
):
    # .env -> conf/tenant.env, conf -> <top>/linked (a linked folder), linked/tenant.env -> ../real/tenant.env:
    # the link's ".." is relative to where conf really is, not to the tenant's folder.
    tenant = make_tenant(registered=True)
    handwritten_env(tenant)
    top = tenant.path.parent / f"links-{uuid.uuid4().hex[:6]}"
    linked, real_dir = top / "linked", top / "real"
    linked.mkdir(parents=True)
    real_dir.mkdir()
    real = real_dir / "tenant.env"
    os.replace(tenant.path / ".env", real)
    (linked / "tenant.env").symlink_to("../real/tenant.env")
    (tenant.path / "conf").symlink_to(os.path.relpath(linked, tenant.path))
    (tenant.path / ".env").symlink_to("conf/tenant.env")
    chown_like_parent(top, linked, real_dir, real, linked / "tenant.env", tenant.path / "conf", tenant.path / ".env")
    before = real.read_bytes()
    try:
        upgrade = wait_final(quick(tenant, "v2"))

        assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
        assert os.readlink(tenant.path / ".env") == "conf/tenant.env"
        assert os.readlink(linked / "tenant.env") == "../real/tenant.env"
        assert real.read_bytes() == before.replace(b"IMAGE_TAG=v1  #", b"IMAGE_TAG=v2  #")
        assert sorted(p.name for p in real_dir.iterdir()) == ["tenant.env"]
        assert not (tenant.path / "real").exists()
        assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v2")}
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def test_services_pinned_by_digest_or_a_fixed_tag_stay_as_they_are_and_pass_the_verification(
    make_tenant, celery_worker_thread, docker_engine
):
    tenant = make_tenant(registered=True)
    handwritten_env(tenant)
    digest = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", docker_engine.image("v1")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(
        compose.read_text().rstrip("\n")
        + "\n"
        + f"""
  pinned:
    image: {digest}
    network_mode: host
    init: true
    environment: {{PORT: "{free_port()}", SERVICE_NAME: pinned}}
  fixed:
    image: {docker_engine.image("v3")}
    network_mode: host
    init: true
    environment: {{PORT: "{free_port()}", SERVICE_NAME: fixed}}
"""
    )
    assert tenant.compose("up", "-d", "--wait").returncode == 0
    kept = {s: i for s, i in tenant.container_ids().items() if s in ("pinned", "fixed")}

    upgrade = wait_final(quick(tenant, "v2"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    ids = tenant.running_image_ids()
    assert ids["pinned"] == registry_id(docker_engine, "v1") and ids["fixed"] == registry_id(docker_engine, "v3")
    assert {ids[s] for s in ("web", "api", "docs")} == {registry_id(docker_engine, "v2")}
    assert {s: i for s, i in tenant.container_ids().items() if s in kept} == kept  # not recreated


@pytest.mark.parametrize("line", ['export IMAGE_TAG="v1"  # quoted', "IMAGE_TAG = 'v1'", "IMAGE_TAG=v1"])
def test_env_forms_compose_accepts_crlf_and_no_final_newline_keep_their_bytes(
    make_tenant, celery_worker_thread, docker_engine, line
):
    tenant = make_tenant(registered=True)
    handwritten_env(tenant, tag_lines=("# tag below",))
    text = tenant.env().decode().rstrip("\n").replace("\n", "\r\n") + "\r\n" + line  # CRLF, no final newline
    (tenant.path / ".env").write_bytes(text.encode())
    assert tenant.compose("up", "-d", "--wait").returncode == 0
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v1")}

    upgrade = wait_final(quick(tenant, "v3"))

    assert upgrade.status == UpgradeStatus.SUCCEEDED, upgrade.error
    assert tenant.env() == text.encode()[: -len(line)] + line.replace("v1", "v3").encode()
    assert set(tenant.running_image_ids().values()) == {registry_id(docker_engine, "v3")}

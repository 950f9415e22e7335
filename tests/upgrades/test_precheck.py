"""The upgrade precheck: one command on the node, the same checks and sentences as before."""

import pytest

from upgrades.models import Upgrade
from upgrades.modes.precheck import Section, parse_sections, precheck, precheck_argv, precheck_verdict
from upgrades.runner import StepContext, StepError


class Instance:
    install_dir = "/srv/tenant a"
    compose_project = "proj"
    slug = "tenant-a"


def ok_sections(**changes) -> list[Section]:
    sections = {
        "docker": Section("docker", 0, "26.1.5"),
        "compose": Section("compose", 0, "2.29.1"),
        "config": Section("config", 0, ""),
        "df": Section(
            "df", 0, "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 50 4194304 50% /"
        ),
    }
    sections.update(changes)
    return list(sections.values())


def verdict(sections, minimum=1024):
    return precheck_verdict(sections, instance=Instance(), node="node-1", min_free_mb=minimum)


def test_argv_passes_files_and_the_compose_command_as_parameters():
    argv = precheck_argv(Instance(), need_files=(".env", "a b"), need_compose=True)
    assert argv[3:] == [
        "ccp-precheck",
        "/srv/tenant a",
        "1",
        "2",
        ".env",
        "a b",
        "docker",
        "compose",
        "--project-name",
        "proj",
    ]


def test_sections_are_parsed_with_their_exit_codes():
    out = b"\x1edocker 0\n26.1\n\x1ecompose 127\nsh: docker-compose: not found\n\x1efile 1\n.env\n"
    assert parse_sections(out) == [
        Section("docker", 0, "26.1"),
        Section("compose", 127, "sh: docker-compose: not found"),
        Section("file", 1, ".env"),
    ]


def test_verdict_keeps_the_sentences_and_their_order():
    assert verdict(ok_sections()) == "docker 26.1.5\ncompose 2.29.1\n4096 MB free"
    with pytest.raises(StepError, match="^Docker does not answer on node-1: Cannot connect"):
        verdict(
            ok_sections(
                docker=Section("docker", 1, "Cannot connect to the Docker daemon"), compose=Section("compose", 1, "")
            )
        )
    with pytest.raises(StepError, match="^docker compose v2 is not installed on node-1.$"):
        verdict(ok_sections(compose=Section("compose", 1, "unknown command")))
    with pytest.raises(StepError, match="^/srv/tenant a/.env does not exist on node-1.$"):
        verdict([*ok_sections(config=Section("config", 1, "bad")), Section("file", 1, ".env")])
    with pytest.raises(StepError, match="^The compose project in /srv/tenant a does not load: bad yaml$"):
        verdict(ok_sections(config=Section("config", 1, "bad yaml")))
    with pytest.raises(StepError, match="^Only 4096 MB free under /srv/tenant a; at least 5000 MB needed.$"):
        verdict(ok_sections(), minimum=5000)
    with pytest.raises(StepError, match="did not complete"):
        verdict([Section("docker", 0, "26")])


class CountingDriver:
    """The real driver, counting what reaches the node (not a double: every call goes through)."""

    def __init__(self, driver):
        self.driver, self.calls = driver, []

    def __getattr__(self, name):
        attr = getattr(self.driver, name)
        if callable(attr):

            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)

            return counted
        return attr


@pytest.mark.testbed
@pytest.mark.django_db(transaction=True)
def test_precheck_on_a_real_tenant_is_one_round_trip(make_tenant, settings):
    tenant = make_tenant()
    upgrade = Upgrade.objects.create(instance=tenant.instance, mode="image_only", target_tag="v2")
    driver = CountingDriver(tenant.driver())
    ctx = StepContext(upgrade=upgrade, driver=driver, secrets=[])

    report = precheck(ctx, need_files=(".env",))
    assert driver.calls == ["run"]
    assert report.splitlines()[0].startswith("docker ") and report.endswith("MB free")

    with pytest.raises(StepError, match=f"^{tenant.path}/scripts/upgrade.sh does not exist on "):
        precheck(ctx, need_files=("scripts/upgrade.sh",))
    compose = tenant.path / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("services:", "services: [broken"))
    with pytest.raises(StepError, match=f"^The compose project in {tenant.path} does not load: "):
        precheck(ctx, need_files=(".env",))
    assert precheck(ctx, need_compose=False).endswith("MB free")  # release mode does not load the old project
    settings.CCP_MIN_FREE_DISK_MB = 1 << 40
    with pytest.raises(StepError, match="MB needed.$"):
        precheck(ctx, need_compose=False)

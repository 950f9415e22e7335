"""/metrics: who may read it, that its text is valid Prometheus exposition format (prometheus_client's
parser and a strict line-by-line check of our own), that every value is what the rows say, and that a
scrape costs the same number of queries for 3 instances as for 60."""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from ccp.settings import _networks
from instances.choices import BackupLabel, BackupStatus, Health, InstanceStatus, RestoreStatus
from instances.models import Attention, Backup, Restore
from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade
from upgrades.rollouts.models import Rollout, RolloutItem

TOKEN = "t" * 20 + "-metrics-token-for-tests-0123456789"

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_VALUE = r"(?:[+-]?Inf|NaN|[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_LABELS = rf"\{{(?:{_PAIR}(?:,{_PAIR})*)?\}}"
SAMPLE = re.compile(rf"({_NAME})({_LABELS})? ({_VALUE})")


def strict_parse(text: str) -> dict[str, dict]:
    """name -> {"help", "type", "samples": {labels: value}}; fails on anything the format does not allow:
    a sample before its family's HELP and TYPE, a family twice, a series twice, a malformed line."""
    assert text.endswith("\n") and "\n\n" not in text
    families: dict[str, dict] = {}
    current, current_name = None, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and name not in families, line
            families[name] = current = {"help": help_text, "type": None, "samples": {}}
            current_name = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current_name and current["type"] is None and kind in ("gauge", "counter"), line
            current["type"] = kind
        else:
            match = SAMPLE.fullmatch(line)
            assert match, f"not a valid sample line: {line!r}"
            assert match.group(1) == current_name and current["type"], line
            labels = tuple(
                (key, re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw))
                for key, raw in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or "")
            )
            assert labels not in current["samples"], f"series twice: {line}"
            current["samples"][labels] = float(match.group(3))
    return families


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def read(client) -> dict[str, dict]:
    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.content.decode()
    parsed = {
        f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
        for f in text_string_to_metric_families(text)
    }
    strict = strict_parse(text)
    for name, family in strict.items():
        assert {tuple(sorted(k)): v for k, v in family["samples"].items()}.keys() == parsed[name].keys()
    return parsed


def value(metrics: dict, name: str, **labels) -> float:
    return metrics[name][tuple(sorted(labels.items()))]


@pytest.fixture
def token(settings):
    settings.CCP_METRICS_TOKEN = TOKEN
    settings.CCP_METRICS_ALLOWED_NETWORKS = []


# --- who may read it -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_refused_to_everyone_by_default(client, admin_client, settings):
    assert settings.CCP_METRICS_TOKEN == "" and settings.CCP_METRICS_ALLOWED_NETWORKS == []
    for c in (client, admin_client):  # not even a signed-in superuser: metrics are for Prometheus
        response = scrape(c, HTTP_AUTHORIZATION="Bearer anything")
        assert response.status_code == 403
        assert b"CCP_METRICS_TOKEN" in response.content and b"ccp_" not in response.content


@pytest.mark.django_db
def test_bearer_token(client, token):
    assert scrape(client).status_code == 401
    assert scrape(client)["WWW-Authenticate"].startswith("Bearer")
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Token {TOKEN}", TOKEN, "Bearer "):
        assert scrape(client, HTTP_AUTHORIZATION=wrong).status_code == 401, wrong
    assert scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert scrape(client, HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.django_db
def test_allowed_networks_only_for_direct_requests(client, settings):
    settings.CCP_METRICS_TOKEN = ""
    settings.CCP_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("127.20.0.0/16"), ipaddress.ip_network("::1")]
    assert scrape(client, REMOTE_ADDR="127.20.3.4").status_code == 200
    assert scrape(client, REMOTE_ADDR="::1").status_code == 200
    assert scrape(client, REMOTE_ADDR="::ffff:127.20.3.4").status_code == 200
    assert scrape(client, REMOTE_ADDR="127.21.0.1").status_code == 403
    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 403
    # Through a proxy the address is the proxy's: only a token counts then.
    assert scrape(client, REMOTE_ADDR="127.20.3.4", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 403
    assert scrape(client, REMOTE_ADDR="127.20.3.4", HTTP_FORWARDED="for=198.51.100.7").status_code == 403


def test_networks_setting_rejects_nonsense():
    assert _networks(["127.0.0.0/8", " 127.0.0.1 ", "::1"]) == [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    ]
    with pytest.raises(ImproperlyConfigured, match="'office' is not an IP address or network"):
        _networks(["office"])


# --- what it says ----------------------------------------------------------------------------------


def _fleet(make_node, make_instance, size: int, now):
    """Instances on two nodes, with every kind of backup, upgrade and restore history."""
    nodes = [make_node(), make_node()]
    healths, statuses = list(Health.values), list(InstanceStatus.values)
    instances = []
    for i in range(size):
        instance = make_instance(node=nodes[i % 2], status=statuses[i % 3])
        instance.health, instance.observed_version = healths[i % 3], ["v1", "v2", ""][i % 3]
        instance.save(update_fields=["health", "observed_version"])
        instances.append(instance)
        ago = timedelta(hours=i + 1)
        if i % 4 != 3:  # every fourth has no good backup at all
            Backup.objects.create(
                instance=instance,
                label=BackupLabel.SCHEDULED,
                status=BackupStatus.SUCCEEDED,
                started_at=now - ago - timedelta(days=1),
                verify_ok=True,
            )
            Backup.objects.create(
                instance=instance, label=BackupLabel.MANUAL, status=BackupStatus.SUCCEEDED, started_at=now - ago
            )
        # Newer, but not good: failed, still running, and one that failed verification.
        Backup.objects.create(instance=instance, status=BackupStatus.FAILED, started_at=now - timedelta(minutes=5))
        Backup.objects.create(instance=instance, status=BackupStatus.RUNNING, started_at=now - timedelta(minutes=1))
        Backup.objects.create(
            instance=instance, status=BackupStatus.SUCCEEDED, verify_ok=False, started_at=now - timedelta(minutes=30)
        )
        for j, (mode, status) in enumerate(
            [
                (UpgradeMode.IMAGE_ONLY, UpgradeStatus.SUCCEEDED),
                (UpgradeMode.RELEASE, UpgradeStatus.ROLLED_BACK),
                (UpgradeMode.FULL, UpgradeStatus.FAILED),
            ]
        ):
            if (i + j) % 2 == 0:
                Upgrade.objects.create(instance=instance, mode=mode, status=status)
        Restore.objects.create(instance=instance, status=[RestoreStatus.SUCCEEDED, RestoreStatus.FAILED][i % 2])
        if i % 5 == 0:
            Attention.objects.create(instance=instance, reason="rollback failed")
            Attention.objects.create(instance=instance, reason="again")
    return instances


@pytest.mark.django_db
def test_values_match_the_rows(client, token, make_node, make_instance):
    now = timezone.now()
    instances = _fleet(make_node, make_instance, 12, now)
    Attention.objects.create(instance=instances[1], reason="old", resolved_at=now)
    metrics = read(client)

    for health in Health.values:
        assert value(metrics, "ccp_instances", health=health) == sum(i.health == health for i in instances)
    for status in InstanceStatus.values:
        assert value(metrics, "ccp_instances_by_status", status=status) == sum(i.status == status for i in instances)
    assert metrics["ccp_instances_by_version"] == {
        (("version", "unknown"),): 4,
        (("version", "v1"),): 4,
        (("version", "v2"),): 4,
    }
    assert value(metrics, "ccp_instances_needing_attention") == 3  # instances 0, 5, 10; resolved ones don't count

    for instance in instances:
        labels = {"slug": instance.slug, "node": instance.node.name}
        good = Backup.objects.filter(instance=instance, status=BackupStatus.SUCCEEDED).exclude(verify_ok=False)
        newest = good.order_by("-started_at").first()
        scraped_age = value(metrics, "ccp_instance_last_good_backup_age_seconds", **labels)
        assert (
            value(
                metrics,
                "ccp_instance_info",
                **labels,
                status=instance.status,
                health=instance.health,
                version=instance.observed_version or "unknown",
            )
            == 1
        )
        if newest is None:
            assert math.isinf(scraped_age)
            assert tuple(sorted(labels.items())) not in metrics["ccp_instance_last_good_backup_timestamp_seconds"]
        else:
            assert newest.label == BackupLabel.MANUAL  # the newest good one, not the newer bad ones
            expected_age = (timezone.now() - newest.started_at).total_seconds()
            assert expected_age - 5 <= scraped_age <= expected_age
            assert value(metrics, "ccp_instance_last_good_backup_timestamp_seconds", **labels) == pytest.approx(
                newest.started_at.timestamp()
            )

    for status in UpgradeStatus.values:
        assert (
            value(metrics, "ccp_operations", kind="upgrade", result=status)
            == Upgrade.objects.filter(status=status).count()
        )
        for mode in UpgradeMode.values:
            assert (
                value(metrics, "ccp_upgrades", mode=mode, result=status)
                == Upgrade.objects.filter(mode=mode, status=status).count()
            )
    for status in BackupStatus.values:
        assert (
            value(metrics, "ccp_operations", kind="backup", result=status)
            == Backup.objects.filter(status=status).count()
        )
    for status in RestoreStatus.values:
        assert (
            value(metrics, "ccp_operations", kind="restore", result=status)
            == Restore.objects.filter(status=status).count()
        )
    assert value(metrics, "ccp_operations", kind="backup", result="succeeded") == 9 * 2 + 12


@pytest.mark.django_db
def test_label_values_are_escaped(client, token, make_instance):
    instance = make_instance()
    instance.observed_version = 'v1 "quoted" back\\slash\nnewline'
    instance.save(update_fields=["observed_version"])
    metrics = read(client)  # both parsers accept it
    assert value(metrics, "ccp_instances_by_version", version=instance.observed_version) == 1


@pytest.mark.django_db
def test_an_empty_fleet_reports_zeros(client, token):
    metrics = read(client)
    assert all(v == 0 for v in metrics["ccp_instances"].values()) and len(metrics["ccp_instances"]) == 3
    assert metrics["ccp_instance_last_good_backup_age_seconds"] == {}


@pytest.mark.django_db
def test_query_count_does_not_grow_with_the_fleet(client, token, make_node, make_instance):
    now = timezone.now()
    _fleet(make_node, make_instance, 3, now)
    with CaptureQueriesContext(connection) as small:
        read(client)
    _fleet(make_node, make_instance, 60, now)
    with CaptureQueriesContext(connection) as large:
        metrics = read(client)
    assert len(metrics["ccp_instance_info"]) == 63
    assert len(small.captured_queries) == len(large.captured_queries) == 7, [q["sql"] for q in large]


@pytest.mark.parametrize(
    "bad",
    [
        'x{a="b"} 1\n',  # a sample before its HELP and TYPE
        '# HELP x h\n# TYPE x gauge\nx{a="say "hi""} 1\n',  # an unescaped quote
        '# HELP x h\n# TYPE x gauge\nx{a="b"} 1\nx{a="b"} 2\n',  # the same series twice
        "# HELP x h\n# TYPE x gauge\nx 1.2.3\n",  # not a number
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP x h\n# TYPE x gauge\n",  # a family twice
    ],
)
def test_the_strict_parser_refuses_malformed_text(bad):
    with pytest.raises(AssertionError):
        strict_parse(bad)


@pytest.mark.django_db
def test_rollout_progress_is_reported_per_rollout_that_has_not_ended(client, token, make_node, make_instance):
    node = make_node()
    instances = [make_instance(node=node) for _ in range(4)]
    running = Rollout.objects.create(mode="image_only", image_tag="v2", status="running", current_wave=1)
    statuses = ["succeeded", "running", "pending", "pending"]
    for position, (instance, status) in enumerate(zip(instances, statuses, strict=True)):
        RolloutItem.objects.create(
            rollout=running, instance=instance, wave=min(position, 1), position=position, status=status
        )
    done = Rollout.objects.create(mode="image_only", image_tag="v1", status="succeeded")
    RolloutItem.objects.create(rollout=done, instance=instances[0], wave=0, position=0, status="succeeded")

    metrics = read(client)

    assert metrics["ccp_rollouts"][(("status", "running"),)] == 1
    assert metrics["ccp_rollouts"][(("status", "succeeded"),)] == 1
    assert metrics["ccp_rollouts"][(("status", "halted"),)] == 0
    progress = metrics["ccp_rollout_instances"]
    key = (("rollout", str(running.pk)), ("rollout_status", "running"))
    assert progress[(*key[:1], key[1], ("status", "pending"))] == 2
    assert progress[(*key[:1], key[1], ("status", "succeeded"))] == 1
    assert progress[(*key[:1], key[1], ("status", "failed"))] == 0
    assert not any(dict(labels)["rollout"] == str(done.pk) for labels in progress)  # ended: not reported
    assert metrics["ccp_rollout_current_wave"][key] == 1

"""Reads behind the console (issue 13): registry tag names, downgrades, revert targets, locked releases."""

import pytest

from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Release, Upgrade
from upgrades.registry import is_downgrade, missing_from_registry, registry_tags, split_image, tags_url
from upgrades.selectors import revert_target


@pytest.mark.parametrize(
    "image,expected",
    [
        ("127.0.0.1:5500/ccp-test/app:${IMAGE_TAG:-v1}", ("127.0.0.1:5500", "ccp-test/app")),
        ("registry.example.com/campaign/web:v2.1", ("registry.example.com", "campaign/web")),
        ("localhost/app@sha256:" + "a" * 64, ("localhost", "app")),
        ("busybox:1.36", None),  # no registry host: nothing to ask
    ],
)
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_tags_url_uses_http_only_on_loopback():
    assert tags_url("127.0.0.1:5500", "ccp-test/app") == "http://127.0.0.1:5500/v2/ccp-test/app/tags/list"
    assert tags_url("registry.example.com", "c/web") == "https://registry.example.com/v2/c/web/tags/list"


@pytest.mark.parametrize(
    "current,target,down",
    [("v2", "v1", True), ("v1", "v2", False), ("v2.10", "v2.9", True), ("v1", "broken", False), ("", "v1", False)],
)
def test_is_downgrade(current, target, down):
    assert is_downgrade(current, target) is down


@pytest.mark.django_db
def test_revert_targets(make_instance):
    instance = make_instance()
    v1 = Release.objects.create(version="v1", image_tag="v1", template_set="testbed")
    v2 = Release.objects.create(version="v2", image_tag="v2", template_set="testbed")
    first = Upgrade.objects.create(
        instance=instance, mode=UpgradeMode.RELEASE, release=v1, status=UpgradeStatus.SUCCEEDED, is_first_deploy=True
    )
    second = Upgrade.objects.create(
        instance=instance, mode=UpgradeMode.RELEASE, release=v2, status=UpgradeStatus.SUCCEEDED, from_version="v1"
    )
    quick = Upgrade.objects.create(
        instance=instance,
        mode=UpgradeMode.IMAGE_ONLY,
        target_tag="v3",
        from_version="v2",
        status=UpgradeStatus.SUCCEEDED,
    )
    failed = Upgrade.objects.create(
        instance=instance, mode=UpgradeMode.IMAGE_ONLY, target_tag="v9", from_version="v3", status=UpgradeStatus.FAILED
    )
    assert revert_target(first) is None  # nothing before a first deploy
    assert revert_target(second) == ("release", "v1")
    assert revert_target(quick) == ("quick", "v2")
    assert revert_target(failed) is None  # a failed upgrade changed nothing to go back from


@pytest.mark.django_db
def test_a_used_release_cannot_change_through_the_api(api, superuser, make_instance):
    release = Release.objects.create(version="v1", image_tag="v1", template_set="testbed")
    client = api(superuser)
    assert client.patch("/api/v1/releases/v1/", {"notes": "before use"}, format="json").status_code == 200
    Upgrade.objects.create(instance=make_instance(), mode=UpgradeMode.RELEASE, release=release)

    refused = client.patch("/api/v1/releases/v1/", {"image_tag": "v2"}, format="json")

    assert refused.status_code == 400 and "make a new release" in refused.json()["detail"]
    assert Release.objects.get(pk=release.pk).image_tag == "v1"
    assert client.patch("/api/v1/releases/v1/", {"notes": "still editable"}, format="json").status_code == 200


@pytest.mark.django_db
def test_the_suite_never_asks_a_registry_off_this_host(make_instance, settings):
    assert settings.CCP_REGISTRY_TAGS == "loopback"  # ccp/test_settings.py
    Release.objects.create(
        version="v1", image_tag="v1", template_set="testbed", is_default=True, registry="registry.example.com/c"
    )
    instance = make_instance(ports={"web": 31001, "api": 31002, "docs": 31003, "extra": 31004})
    listing = registry_tags(instance)
    assert listing.repositories == ["registry.example.com/c/ccp-test/app"]
    assert listing.tags == [] and "CCP_REGISTRY_TAGS" in listing.problem
    assert missing_from_registry(["registry.example.com/c/ccp-test/app:v9"]) == []  # not asked, not reported

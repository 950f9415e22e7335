"""Errors in words first (issue 13, item 5): a pull of a tag the registry lacks says so, then compose's output."""

import pytest

from upgrades.choices import UpgradeStatus

from .helpers import quick, wait_final

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def test_a_tag_the_registry_lacks_is_named_in_the_first_sentence(make_tenant, celery_worker_thread, docker_engine):
    tenant = make_tenant()

    upgrade = wait_final(quick(tenant, "v9"))

    assert upgrade.status in (UpgradeStatus.FAILED, UpgradeStatus.ROLLED_BACK), upgrade.status
    first, _, rest = upgrade.error.partition("\n")
    assert first.startswith(f"The image {docker_engine.image('v9')} does not exist in the registry (it has "), first
    assert "v1" in first and first.endswith("check the tag.")
    assert b"IMAGE_TAG=v1" in tenant.env()  # nothing changed on the node

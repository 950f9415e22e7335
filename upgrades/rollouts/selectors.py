"""Reads for rollouts: choosing instances by filter, and a rollout's waves as pages show them."""

from dataclasses import dataclass

from django.db.models import Q

from instances.models import Instance

from ..selectors import upgrades_with_steps
from .models import Rollout, RolloutItem


def instances_for_rollout(
    *, slugs: list[str] | None = None, node: str = "", tag: str = "", status: str = "", search: str = ""
):
    """The instances a rollout selects: named by slug, and/or filtered by node name, image tag (the
    instance's own tag), status and a search over name, slug and domain. Every filter given applies."""
    queryset = Instance.objects.select_related("node").order_by("slug")
    if slugs:
        queryset = queryset.filter(slug__in=slugs)
    if node:
        queryset = queryset.filter(node__name=node)
    if tag:
        queryset = queryset.filter(image_tag=tag)
    if status:
        queryset = queryset.filter(status=status)
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(slug__icontains=search) | Q(domain__icontains=search))
    return queryset


@dataclass(frozen=True)
class Wave:
    number: int
    label: str
    items: list[RolloutItem]


def rollout_waves(rollout: Rollout) -> list[Wave]:
    """The rollout's items grouped by wave (wave 0 is the canary), each with its upgrade's current step."""
    items = list(rollout.items.select_related("instance__node", "upgrade").order_by("position"))
    upgrades_with_steps([item.upgrade for item in items if item.upgrade is not None], with_output=False)
    waves: dict[int, list[RolloutItem]] = {}
    for item in items:
        waves.setdefault(item.wave, []).append(item)
    return [
        Wave(number, "Canary" if number == 0 and rollout.canary_size else f"Wave {number}", members)
        for number, members in sorted(waves.items())
    ]


def item_current_step(item: RolloutItem) -> str:
    """The name of the step its upgrade is at (or ended on); empty before it starts."""
    if item.upgrade is None:
        return ""
    steps = getattr(item.upgrade, "step_list", None)
    if steps is None:
        steps = list(item.upgrade.steps.defer("output"))
    return steps[-1].name if steps else ""

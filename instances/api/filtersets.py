import django_filters

from instances.choices import InstanceStatus
from instances.drift.choices import DriftState
from instances.models import Instance, Node
from instances.selectors import needing_attention


class InstanceFilterSet(django_filters.FilterSet):
    node = django_filters.CharFilter(field_name="node__name", help_text="Node name.")
    status = django_filters.ChoiceFilter(choices=InstanceStatus.choices)
    needs_attention = django_filters.BooleanFilter(
        method="filter_needs_attention", help_text="Has an unresolved attention record."
    )
    drift = django_filters.ChoiceFilter(
        choices=[*DriftState.choices, ("never", "Not checked yet")],
        method="filter_drift",
        help_text="The latest drift report's finding (never: not checked yet).",
    )

    class Meta:
        model = Instance
        fields = ["node", "status", "is_registered", "health"]

    def filter_needs_attention(self, queryset, name, value):
        return needing_attention(queryset, value)

    def filter_drift(self, queryset, name, value):
        # The viewset's queryset carries drift_state (annotate_drift).
        return queryset.filter(drift_state__isnull=True) if value == "never" else queryset.filter(drift_state=value)


class NodeFilterSet(django_filters.FilterSet):
    class Meta:
        model = Node
        fields = ["driver", "registry_access", "check_ok"]

import django_filters

from instances.choices import InstanceStatus
from instances.models import Instance, Node
from instances.selectors import needing_attention


class InstanceFilterSet(django_filters.FilterSet):
    node = django_filters.CharFilter(field_name="node__name", help_text="Node name.")
    status = django_filters.ChoiceFilter(choices=InstanceStatus.choices)
    needs_attention = django_filters.BooleanFilter(
        method="filter_needs_attention", help_text="Has an unresolved attention record."
    )

    class Meta:
        model = Instance
        fields = ["node", "status", "is_registered", "health"]

    def filter_needs_attention(self, queryset, name, value):
        return needing_attention(queryset, value)


class NodeFilterSet(django_filters.FilterSet):
    class Meta:
        model = Node
        fields = ["driver", "registry_access", "check_ok"]

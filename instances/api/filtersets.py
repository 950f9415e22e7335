import django_filters

from instances.choices import InstanceStatus
from instances.models import Instance, Node


class InstanceFilterSet(django_filters.FilterSet):
    node = django_filters.CharFilter(field_name="node__name", help_text="Node name.")
    status = django_filters.ChoiceFilter(choices=InstanceStatus.choices)

    class Meta:
        model = Instance
        fields = ["node", "status", "is_registered", "health"]


class NodeFilterSet(django_filters.FilterSet):
    class Meta:
        model = Node
        fields = ["driver", "registry_access", "check_ok"]

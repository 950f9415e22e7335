import django_filters

from instances.choices import BackupLabel, BackupStatus
from instances.models import Backup


class BackupFilterSet(django_filters.FilterSet):
    instance = django_filters.CharFilter(field_name="instance__slug", help_text="Instance slug.")
    node = django_filters.CharFilter(field_name="instance__node__name", help_text="Node name.")
    label = django_filters.ChoiceFilter(choices=BackupLabel.choices)
    status = django_filters.ChoiceFilter(choices=BackupStatus.choices)
    verify_ok = django_filters.BooleanFilter(help_text="true: verified good; false: failed verification.")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Backup
        fields = ["instance", "node", "label", "status", "verify_ok"]

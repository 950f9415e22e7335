import django_filters

from upgrades.choices import UpgradeMode, UpgradeStatus
from upgrades.models import Upgrade


class UpgradeFilterSet(django_filters.FilterSet):
    instance = django_filters.CharFilter(field_name="instance__slug", help_text="Instance slug.")
    status = django_filters.ChoiceFilter(choices=UpgradeStatus.choices)
    mode = django_filters.ChoiceFilter(choices=UpgradeMode.choices)

    class Meta:
        model = Upgrade
        fields = ["instance", "status", "mode"]

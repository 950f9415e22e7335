from django.apps import AppConfig


class UpgradesConfig(AppConfig):
    name = "upgrades"
    verbose_name = "Releases and upgrades"

    def ready(self) -> None:
        from . import reconcile  # noqa: F401 - registers the upgrade handler of the lock reconciler
        from .rollouts import reconcile as rollouts_reconcile  # noqa: F401 - and the rollouts' sweep

from django.apps import AppConfig


class UpgradesConfig(AppConfig):
    name = "upgrades"
    verbose_name = "Releases and upgrades"

    def ready(self) -> None:
        # Registers the upgrade handler of the lock reconciler, the rollouts' sweep and the progress endpoint's
        # source. Here, not at the top: they import models, which Django loads only once every app is registered.
        from . import progress, reconcile  # noqa: F401
        from .rollouts import reconcile as rollouts_reconcile  # noqa: F401

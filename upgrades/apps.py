from django.apps import AppConfig


class UpgradesConfig(AppConfig):
    name = "upgrades"
    verbose_name = "Releases and upgrades"

    def ready(self) -> None:
        # Register the upgrade handler of the lock reconciler and the progress endpoint's source.
        from . import progress, reconcile  # noqa: F401

from django.apps import AppConfig


class UpgradesConfig(AppConfig):
    name = "upgrades"
    verbose_name = "Releases and upgrades"

    def ready(self) -> None:
        # Registers the upgrade handler of the lock reconciler. Here, not at the top: it imports models,
        # which Django loads only once every app is registered.
        from . import reconcile  # noqa: F401

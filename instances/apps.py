from django.apps import AppConfig


class InstancesConfig(AppConfig):
    name = "instances"
    verbose_name = "Fleet"

    def ready(self) -> None:
        # Modules that register something on import: the system checks, the reconciler's handlers, the
        # progress endpoint's sources. Here, not at the top: they import models, which Django loads only
        # once every app is registered.
        from . import checks  # noqa: F401
        from .backups import progress, reconcile  # noqa: F401

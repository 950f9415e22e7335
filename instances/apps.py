from django.apps import AppConfig


class InstancesConfig(AppConfig):
    name = "instances"
    verbose_name = "Fleet"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks

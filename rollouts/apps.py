from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"
    verbose_name = "Fleet rollouts"

    def ready(self):
        from . import signals  # noqa: F401 (connects the login audit receivers)

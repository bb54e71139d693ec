"""The AppConfig Django finds when ``errlink.integrations.django`` is in INSTALLED_APPS."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class ErrlinkConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    name = "errlink.integrations.django"
    label = "errlink"
    verbose_name = "errlink error reporting"

    def ready(self) -> None:
        # The client is created here, never at import: settings are final and apps are loaded.
        from ._install import install

        install()

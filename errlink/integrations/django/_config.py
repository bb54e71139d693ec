"""The ``ERRLINK`` setting: validated at start-up, with errors that name the offending key.

Settings named ``ERRLINK_*`` (the Flask habit) are not read: each is a warning saying where its
value belongs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings  # type: ignore[import-untyped]

from .._sdk import OPTION_NAMES, Client, ensure_default_client, warn_configuration
from .._wsgi import INIT_SETTINGS, check_init_settings, invalid_setting, setting_hint, with_hints

TransactionStyle = Literal["url_name", "route", "function"]
TRANSACTION_STYLES = ("url_name", "route", "function")
DISALLOWED_HOST = "django.core.exceptions.DisallowedHost"
_INTEGRATION_KEYS = ("transaction_style", "sql_breadcrumbs", "ignore_disallowed_host")
ALLOWED_KEYS = ("dsn", *sorted(OPTION_NAMES), *_INTEGRATION_KEYS, *INIT_SETTINGS)


class SettingsError(ValueError):
    """Raised as Django's ImproperlyConfigured by the caller."""


@dataclass(frozen=True)
class IntegrationSettings:
    transaction_style: TransactionStyle = "url_name"
    sql_breadcrumbs: bool = True


current = IntegrationSettings()


def where(key: str) -> str:
    return f"settings.ERRLINK[{key!r}]"


def configure(setting: object, *, logging_configured: bool) -> tuple[Client, IntegrationSettings]:
    """The client and integration settings for the ``ERRLINK`` value (None when it is unset).

    Unset, an existing process default client (from `errlink.init`) is used as it is. Otherwise
    `errlink.init` creates the process default from the setting (the DSN may come from the
    ``ERRLINK_DSN`` environment variable). `logging_configured`: ``LOGGING`` already routes
    records to an errlink handler, so `init` must not capture log records as well.
    """
    global current
    _warn_about_prefixed_settings()
    replace = setting is not None  # unset: keep the default client errlink.init() made, if any
    if setting is None:
        setting = {}
    if not isinstance(setting, Mapping):
        raise SettingsError(
            f"settings.ERRLINK must be a dict such as {{'dsn': '...'}}, "
            f"not {type(setting).__name__}"
        )
    values = dict(setting)
    unknown = sorted(str(key) for key in set(values) - set(ALLOWED_KEYS))
    if unknown:
        raise SettingsError(
            f"settings.ERRLINK has unknown key(s) {with_hints(unknown, ALLOWED_KEYS)}; "
            f"allowed: {', '.join(ALLOWED_KEYS)}"
        )
    integration = _integration_settings(values)
    init_args = {name: values.pop(name) for name in INIT_SETTINGS if name in values}
    try:
        check_init_settings(init_args, where)
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from exc
    if logging_configured:
        init_args.setdefault("logging_event_level", None)
        init_args.setdefault("logging_breadcrumb_level", None)
    if values.pop("ignore_disallowed_host", True):
        ignored = values.get("ignore_errors", ())
        if isinstance(ignored, list | tuple | set | frozenset):
            values["ignore_errors"] = (*ignored, DISALLOWED_HOST)
    dsn = values.pop("dsn", None)
    try:
        client = ensure_default_client("django", dsn, replace=replace, **init_args, **values)
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(invalid_setting(exc, {"dsn": dsn, **values}, where))) from exc
    current = integration
    return client, integration


def _warn_about_prefixed_settings() -> None:
    for key in dir(settings):
        if not key.startswith("ERRLINK_"):
            continue
        name = key[8:].lower()
        if name in ALLOWED_KEYS:
            problem = f"is not read: put it in ERRLINK = {{{name!r}: ...}}"
        else:
            hint = setting_hint(name, ALLOWED_KEYS)
            problem = f"is not an errlink setting{hint}: errlink reads only the ERRLINK dict"
        warn_configuration(f"errlink: settings.{key} {problem}; ignored")


def _integration_settings(values: dict[str, Any]) -> IntegrationSettings:
    style = values.pop("transaction_style", "url_name")
    if style not in TRANSACTION_STYLES:
        raise SettingsError(
            f"errlink: {where('transaction_style')} must be one of "
            f"{', '.join(map(repr, TRANSACTION_STYLES))}, not {style!r}"
        )
    sql = values.pop("sql_breadcrumbs", True)
    if not isinstance(sql, bool):
        raise SettingsError(f"errlink: {where('sql_breadcrumbs')} must be True or False")
    if not isinstance(values.get("ignore_disallowed_host", True), bool):
        raise SettingsError(f"errlink: {where('ignore_disallowed_host')} must be True or False")
    return IntegrationSettings(transaction_style=style, sql_breadcrumbs=sql)

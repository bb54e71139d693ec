"""Flask integration: report unhandled errors with the request they happened in.

Usage::

    from errlink.integrations.flask import Errlink

    app = Flask(__name__)
    app.config["ERRLINK_DSN"] = "https://key@sentry.example.com/1"
    Errlink(app)            # or: errlink_ext = Errlink(); errlink_ext.init_app(app)

Every request runs in its own errlink scope bound to the extension's client, so
`errlink.capture_exception()` inside a view carries the request, and log records become
breadcrumbs of that request. Unhandled exceptions are reported through Flask's
`got_request_exception` signal; Flask's own error handling then proceeds unchanged. An
`HTTPException` (`abort(503)`, routing errors) is reported when its status is in
`capture_status_codes` (default 500-599).

Which client: `client=` if given; else, without a DSN (argument or ``ERRLINK_DSN``) while a
process default client exists (`errlink.init`), that one; else a new client, which becomes the
process default (as `errlink.init` would make it) when there is none yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES, capture_status_codes_option
from ._lazy import LazyMapping, LazyRequest
from ._request import body_data, form_data, request_interface, to_text
from ._sdk import (
    INTERNAL,
    OPTION_NAMES,
    Client,
    ClientCore,
    ClientOptions,
    Dsn,
    Options,
    current_scope,
    default_client,
    ensure_default_client,
    logger,
    request_scope,
    set_transaction,
    warn_configuration,
)
from ._wsgi import (
    INIT_SETTINGS,
    check_init_settings,
    content_length,
    environ_env,
    environ_headers,
    environ_trace,
    environ_url,
    invalid_setting,
    over_limit,
    parse_cookies,
    setting_hint,
    with_hints,
    wsgi_text,
)

require("flask", distribution="flask", extra="flask", minimum=(2, 2))
require("blinker", distribution="blinker", extra="flask", minimum=(1, 6))

from flask import Flask, g, got_request_exception, has_app_context, has_request_context  # noqa: E402
from flask import request as current_request  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

TransactionStyle = Literal["endpoint", "url"]

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from typing_extensions import Unpack


class ErrlinkSettings(ClientOptions, total=False):
    """Keyword arguments of `Errlink`: the client options plus the integration's own."""

    dsn: str | Dsn | None
    capture_status_codes: Iterable[int]
    transaction_style: TransactionStyle
    logging_event_level: int | str | None
    logging_breadcrumb_level: int | str | None
    excepthook: bool


__all__ = ["Errlink"]

_INTEGRATION_SETTINGS = ("capture_status_codes", "transaction_style", *INIT_SETTINGS)
_SETTINGS = ("dsn", *sorted(OPTION_NAMES), *_INTEGRATION_SETTINGS)
_EXTENSION_KEY = "errlink"


class Errlink:
    """The Flask extension. Arguments given here win over ``app.config["ERRLINK_*"]`` keys.

    - `dsn` and any client option (`environment=`, `send_default_pii=`, ...), or the matching
      config keys (``ERRLINK_DSN``, ``ERRLINK_ENVIRONMENT``, ``ERRLINK_SEND_DEFAULT_PII``, ...);
    - `client`: an existing `errlink.sync.Client` to use instead of creating one;
    - `capture_status_codes` (``ERRLINK_CAPTURE_STATUS_CODES``): the statuses whose
      `HTTPException` (`abort(503)`, routing errors) is reported (default ``range(500, 600)``;
      add 404 to see unknown URLs), as in the Sanic, Tornado and aiohttp integrations;
    - `transaction_style` (``ERRLINK_TRANSACTION_STYLE``): ``"endpoint"`` (default,
      ``"orders.show"``) or ``"url"`` (the URL rule, ``"/orders/<int:id>"``);
    - `logging_event_level`, `logging_breadcrumb_level`, `excepthook`: passed to `errlink.init`
      when the extension creates the process default client.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        client: Client | None = None,
        **settings: Unpack[ErrlinkSettings],
    ) -> None:
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise TypeError(
                f"Errlink() got unknown argument(s) {with_hints(unknown, _SETTINGS)}; "
                f"allowed: client, {', '.join(_SETTINGS)}"
            )
        self._client = client
        self._settings: dict[str, Any] = dict(settings)
        if self._settings.get("dsn", "") is None:
            del self._settings["dsn"]  # dsn=None: not given (app.config or the environment)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Hook `app`: validates the settings and creates the client now, at start-up."""
        if _EXTENSION_KEY in app.extensions:
            raise RuntimeError("errlink's Flask extension is already set up on this app")
        state = _AppState(app, *self._client_and_settings(app))
        app.extensions[_EXTENSION_KEY] = state
        app.wsgi_app = _ScopeMiddleware(app.wsgi_app, state)  # type: ignore[method-assign]
        got_request_exception.connect(state.on_exception, app, weak=False)
        # The cheapest hook that runs once the URL is matched (no signal dispatch per request).
        app.url_value_preprocessor(state.name_transaction)
        if state.capture_status_codes:
            state.hook_http_errors()

    @staticmethod
    def client_for(app: Flask) -> Client:
        """The client the extension uses for `app`."""
        state: _AppState = app.extensions[_EXTENSION_KEY]
        return state.client

    def _client_and_settings(self, app: Flask) -> tuple[Client, dict[str, Any]]:
        sources: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name in _SETTINGS:
            key = f"ERRLINK_{name.upper()}"
            if key in app.config:
                values[name], sources[name] = app.config[key], f"app.config[{key!r}]"
        for name, value in self._settings.items():
            values[name], sources[name] = value, f"Errlink({name}=...)"
        _warn_about_unknown_config_keys(app)

        def where(name: str) -> str:
            return sources.get(name, name)

        integration = {name: values.pop(name) for name in _INTEGRATION_SETTINGS if name in values}
        check_init_settings(integration, where)
        integration["capture_status_codes"] = capture_status_codes_option(
            integration.get("capture_status_codes", DEFAULT_CAPTURE_STATUS_CODES),
            f"errlink: {where('capture_status_codes')}",
        )
        style = integration.setdefault("transaction_style", "endpoint")
        if style not in ("endpoint", "url"):
            raise ValueError(
                f"errlink: {where('transaction_style')} must be 'endpoint' or 'url', not {style!r}"
            )
        if self._client is not None:
            if values:
                raise ValueError(
                    f"errlink: Errlink(client=...) was given, so {where(next(iter(values)))} "
                    "cannot apply; set client options on that client"
                )
            return self._client, integration
        return _make_client(values, integration, where), integration


def _config_key(name: str) -> str:
    return f"ERRLINK_{name.upper()}"


_CONFIG_KEYS = frozenset(map(_config_key, _SETTINGS))


def _warn_about_unknown_config_keys(app: Flask) -> None:
    for key in app.config:
        if isinstance(key, str) and key.startswith("ERRLINK_") and key not in _CONFIG_KEYS:
            hint = setting_hint(key[8:].lower(), _SETTINGS, spell=_config_key)
            warn_configuration(
                f"errlink: app.config[{key!r}] is not an errlink setting{hint}; ignored"
            )


def _make_client(
    values: dict[str, Any], integration: Mapping[str, Any], where: Callable[[str], str]
) -> Client:
    own_dsn = "dsn" in values
    existing = default_client()
    if existing is not None and values and not own_dsn:
        raise ValueError(
            f"errlink: {where(next(iter(values)))} needs a DSN for the extension's own "
            "client (errlink.init() already made the process default: set options there)"
        )
    dsn = values.pop("dsn", None)
    try:
        if existing is not None and own_dsn:
            return Client(dsn, **values)  # the extension's own client; the default stays
        init_args = {name: integration[name] for name in INIT_SETTINGS if name in integration}
        return ensure_default_client("flask", dsn, replace=False, **init_args, **values)
    except (TypeError, ValueError) as exc:
        raise invalid_setting(exc, {"dsn": dsn, **values}, where) from exc


class _AppState:
    """What the extension keeps per app: the client and the integration settings."""

    def __init__(self, app: Flask, client: Client, settings: Mapping[str, Any]) -> None:
        self.app = app
        self.client = client
        self.core: ClientCore = client.core
        self.capture_status_codes: frozenset[int] = settings["capture_status_codes"]
        self.transaction_style: TransactionStyle = settings["transaction_style"]
        self.core.add_integration("flask")

    @property
    def user_from_flask_login(self) -> bool:
        return self.core.options.send_default_pii and "login_manager" in self.app.__dict__

    def name_transaction(self, endpoint: str | None, values: Any) -> None:
        if not isinstance(current_scope().request, LazyRequest):
            return  # not inside our middleware (a test_request_context, say)
        try:
            if self.transaction_style == "url":
                rule = current_request.url_rule
                name = rule.rule if rule is not None else None
            else:
                name = endpoint
            if name:
                set_transaction(name)
        except Exception:
            logger.warning("errlink: could not name the transaction", exc_info=True, extra=INTERNAL)

    def on_exception(self, sender: Flask, exception: BaseException, **_: Any) -> None:
        if isinstance(exception, HTTPException) and exception.code not in self.capture_status_codes:
            return  # a trapped HTTP error: a response unless its status is listed
        self.report(exception)

    def report(self, exception: BaseException) -> None:
        event_id = self.core.capture_exception(exception, handled=False, mechanism="flask")
        if event_id is not None and has_app_context():
            g.errlink_event_id = event_id  # for an error page that shows the user a reference

    def hook_http_errors(self) -> None:
        # Flask has no signal for HTTPException (abort(), routing errors): they go straight to
        # `handle_http_exception`, which we wrap (unless no status is to be reported). Only
        # called for those exceptions, so requests that raise nothing do not pay for it.
        original = self.app.handle_http_exception
        codes = self.capture_status_codes

        def handle_http_exception(e: HTTPException) -> Any:
            if e.code in codes:
                self.report(e)
            return original(e)

        setattr(self.app, "handle_http_exception", handle_http_exception)  # noqa: B010


class _ScopeMiddleware:
    """WSGI middleware around `app.wsgi_app`: one errlink scope per request."""

    def __init__(self, wsgi_app: WSGIApplication, state: _AppState) -> None:
        self.wsgi_app = wsgi_app
        self._state = state

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        state = self._state
        core = state.core
        if not core.enabled:
            return self.wsgi_app(environ, start_response)
        max_bytes = core.options.max_request_body_bytes
        request = LazyRequest(environ, _request_from_environ, max_bytes)
        user = LazyMapping(_flask_login_user) if state.user_from_flask_login else None
        with request_scope(core, request=request, user=user, trace=environ_trace(environ)):
            return self.wsgi_app(environ, start_response)


def has_extension(app: Flask) -> bool:
    """Whether `Errlink` is set up on `app`."""
    return _EXTENSION_KEY in app.extensions


def current_request_fields(app: Flask, options: Options) -> dict[str, Any]:
    """The event fields of the request Flask is handling, for an error reported without the
    extension (``errlink.init()`` alone): `request`, `transaction` (the endpoint) and, with
    ``send_default_pii`` and Flask-Login, `user`."""
    if not has_request_context():
        return {}
    max_bytes = options.max_request_body_bytes
    fields: dict[str, Any] = {
        "request": LazyRequest(current_request.environ, _request_from_environ, max_bytes)
    }
    if current_request.endpoint:
        fields["transaction"] = current_request.endpoint
    if options.send_default_pii and "login_manager" in app.__dict__:
        fields["user"] = LazyMapping(_flask_login_user)
    return fields


def _request_from_environ(environ: WSGIEnvironment, max_bytes: int | None) -> dict[str, Any]:
    cookie_header = environ.get("HTTP_COOKIE")
    return request_interface(
        url=environ_url(environ),
        method=to_text(environ.get("REQUEST_METHOD") or "GET"),
        query_string=wsgi_text(environ.get("QUERY_STRING") or ""),
        headers=environ_headers(environ),
        cookies=parse_cookies(cookie_header) if cookie_header else None,
        data=_body(environ, max_bytes),
        env=environ_env(environ),
    )


def _body(environ: WSGIEnvironment, max_bytes: int | None) -> Any:
    if max_bytes == 0:
        return None
    length = content_length(environ.get("CONTENT_LENGTH"))
    content_type = to_text(environ.get("CONTENT_TYPE") or "")
    if over_limit(length, max_bytes):
        return body_data(b"", content_type=content_type, content_length=length, max_bytes=max_bytes)
    request = environ.get("werkzeug.request")
    if request is None:
        return None
    form = request.__dict__.get("form")  # parsed by the view: the stream is spent, the form is not
    if form:
        return form_data(
            form, content_type=content_type, content_length=length, max_bytes=max_bytes
        )
    raw = getattr(request, "_cached_data", None)
    if raw is None:
        if not length:
            return None  # no body, or one of unknown size we will not read
        # Cached, so the app (an error handler, say) can still read it after us.
        raw = request.get_data(cache=True, parse_form_data=False)
    return body_data(raw, content_type=content_type, content_length=length, max_bytes=max_bytes)


def _flask_login_user() -> dict[str, Any]:
    # Flask-Login keeps the loaded user in `g._login_user`; reading `current_user` instead would
    # load it (a session lookup, often a database query) on the error path. Not loaded: no user.
    user = g.get("_login_user") if has_app_context() else None
    if user is None or getattr(user, "is_authenticated", False) is not True:
        return {}
    info: dict[str, Any] = {}
    get_id = getattr(user, "get_id", None)
    if callable(get_id):
        info["id"] = to_text(get_id())
    for name in ("username", "email"):
        value = getattr(user, name, None)
        if isinstance(value, str) and value:
            info[name] = value
    return info

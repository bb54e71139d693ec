"""Client options: one validated, immutable record shared by the async and sync clients.

Bad input fails here, at construction, with a message naming the option and what is allowed.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ._mistakes import name_hint, warn
from ._wire.dsn import Dsn

if TYPE_CHECKING:
    from ._wire.transport import Transport

Event = dict[str, Any]
Hint = dict[str, Any]
BeforeSend = Callable[[Event, Hint], Any]
BeforeBreadcrumb = Callable[[dict[str, Any], Hint], Any]
BeforeSendLog = Callable[[dict[str, Any], Hint], Any]
BeforeSendFeedback = Callable[[dict[str, Any], Hint], Any]
RequestBodySize = Literal["none", "small", "medium", "always"]

LEVELS = ("fatal", "error", "warning", "info", "debug")
OUTBOX_FILE_NAME = "errlink-outbox.sqlite3"
QUEUE_MAX_BYTES = 32 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
QUEUE_MAX_ATTACHMENT_BYTES = 64 * 1024 * 1024
_QUEUE_MIN_BYTES = 64 * 1024
REQUEST_BODY_SIZES: dict[str, int | None] = {
    "none": 0,
    "small": 1_000,
    "medium": 10_000,
    "always": None,
}


class ClientOptions(TypedDict, total=False):
    """Keyword options accepted by `AsyncClient`, `errlink.sync.Client` and `errlink.init`."""

    environment: str | None
    release: str | None
    server_name: str | None
    sample_rate: float
    max_breadcrumbs: int
    before_send: BeforeSend | None
    before_breadcrumb: BeforeBreadcrumb | None
    ignore_errors: Iterable[type[BaseException] | str]
    include_locals: bool
    max_locals_time: float
    capture_task_errors: bool
    send_default_pii: bool
    in_app_include: Iterable[str]
    in_app_exclude: Iterable[str]
    max_value_length: int
    queue_size: int
    queue_max_bytes: int
    shutdown_timeout: float
    http_timeout: float
    tags: Mapping[str, object]
    debug: bool
    attach_stacktrace: bool
    scrub_keys: Iterable[str]
    max_event_bytes: int
    max_request_body_size: RequestBodySize
    max_in_flight: int
    http_proxy: str | None
    ca_certs: str | None
    verify_tls: bool
    transport: Transport | None
    outbox: str | os.PathLike[str] | None
    outbox_max_mb: float
    outbox_max_age: float
    outbox_drain_rate: float
    trace_propagation_targets: Iterable[str]
    enable_logs: bool
    before_send_log: BeforeSendLog | None
    before_send_feedback: BeforeSendFeedback | None
    max_attachment_bytes: int
    queue_max_attachment_bytes: int
    auto_session_tracking: bool
    handle_sigterm: bool


@dataclass(frozen=True)
class Options:
    dsn: Dsn | None = None
    environment: str | None = None
    release: str | None = None
    server_name: str | None = None
    sample_rate: float = 1.0
    max_breadcrumbs: int = 100
    before_send: BeforeSend | None = None
    before_breadcrumb: BeforeBreadcrumb | None = None
    ignore_errors: tuple[type[BaseException] | str, ...] = ()
    include_locals: bool = True
    # Seconds one event may spend on frame locals; frames past it are sent without them.
    max_locals_time: float = 0.05
    capture_task_errors: bool = True
    send_default_pii: bool = False
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    max_value_length: int = 1024
    queue_size: int = 1000
    queue_max_bytes: int = QUEUE_MAX_BYTES
    shutdown_timeout: float = 2.0
    http_timeout: float = 10.0
    tags: Mapping[str, str] = field(default_factory=dict)
    debug: bool = False
    attach_stacktrace: bool = False
    scrub_keys: tuple[str, ...] = ()
    max_event_bytes: int = 1_000_000
    max_request_body_size: RequestBodySize = "medium"
    max_in_flight: int = 4
    http_proxy: str | None = None
    ca_certs: str | None = None
    verify_tls: bool = True
    transport: Transport | None = None
    outbox: str | None = None
    outbox_max_mb: float = 50.0
    outbox_max_age: float = 24 * 3600.0
    outbox_drain_rate: float = 100.0
    # Regular expressions searched in an outgoing request's URL: matching requests carry the
    # trace headers. Empty (the default): none do.
    trace_propagation_targets: tuple[str, ...] = ()
    enable_logs: bool = True
    before_send_log: BeforeSendLog | None = None
    before_send_feedback: BeforeSendFeedback | None = None
    max_attachment_bytes: int = MAX_ATTACHMENT_BYTES
    queue_max_attachment_bytes: int = QUEUE_MAX_ATTACHMENT_BYTES
    # Release health: sessions are tracked when this is on and a release is set.
    auto_session_tracking: bool = True
    # Sync clients: on SIGTERM, send (or with an outbox, spill) what is queued, then let the
    # previous handling go on (see `sync/_exit_paths.py`).
    handle_sigterm: bool = False

    @property
    def enabled(self) -> bool:
        return self.dsn is not None or self.transport is not None

    @property
    def tracks_sessions(self) -> bool:
        return self.auto_session_tracking and bool(self.release) and self.enabled

    @property
    def before_send_is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.before_send)

    @property
    def max_request_body_bytes(self) -> int | None:
        return REQUEST_BODY_SIZES[self.max_request_body_size]

    @property
    def outbox_max_bytes(self) -> int:
        return int(self.outbox_max_mb * 1024 * 1024)


OPTION_NAMES = frozenset(f.name for f in fields(Options)) - {"dsn"}
# Accepted by `errlink.init()`, which consumes them, but not by a client.
INIT_ONLY_OPTIONS = frozenset(
    {
        "logging_event_level",
        "logging_breadcrumb_level",
        "excepthook",
        "integrations",
        "default_integrations",
    }
)


def build_options(
    dsn: str | Dsn | None, options: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> Options:
    """Validate user options (plus the environment's ERRLINK_*/SENTRY_* fallbacks) into Options."""
    env = os.environ if env is None else env
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise TypeError(unknown_options_message(unknown))
    values = dict(options)
    values["dsn"] = _dsn(dsn, env)
    values["environment"] = _optional_str(
        "environment", values.get("environment", _env(env, "ENVIRONMENT"))
    )
    values["release"] = _optional_str("release", values.get("release", _env(env, "RELEASE")))
    values["server_name"] = _optional_str(
        "server_name", values.get("server_name", socket.gethostname())
    )
    _validate_values(values)
    return Options(**values)


def unknown_options_message(unknown: Iterable[str]) -> str:
    """The TypeError text for unknown option names: a hint for each, then every allowed name."""
    described = []
    for name in unknown:
        hint = name_hint(name, OPTION_NAMES, init_only=INIT_ONLY_OPTIONS)
        described.append(f"{name!r} ({hint})" if hint else repr(name))
    allowed = sorted(
        [*OPTION_NAMES, *(f"{name} (init() only)" for name in INIT_ONLY_OPTIONS)],
    )
    plural = "s" if len(described) > 1 else ""
    return f"unknown option{plural} {', '.join(described)}; allowed: {', '.join(allowed)}"


def _env_variable(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for variable in (f"ERRLINK_{name}", f"SENTRY_{name}"):
        if env.get(variable):
            return variable, env[variable]
    return None


def _env(env: Mapping[str, str], name: str) -> str | None:
    found = _env_variable(env, name)
    return None if found is None else found[1]


def _dsn(value: str | Dsn | None, env: Mapping[str, str]) -> Dsn | None:
    """The argument, else the environment's DSN. The argument wins, and a different DSN in the
    environment that it hides is a warning: someone set that variable expecting it to count."""
    if value is not None and not isinstance(value, str | Dsn):
        raise TypeError(f"option 'dsn' must be a string, not {type(value).__name__}")
    from_env = _env_variable(env, "DSN")
    if value is None:
        if from_env is None:
            return None
        value = from_env[1]
    elif from_env is not None and not _same_dsn(value, from_env[1]):
        _warn_env_dsn_ignored(from_env[0], value)
    if isinstance(value, Dsn):
        return value
    if not value.strip():
        return None  # an explicit empty DSN disables the client
    return Dsn.parse(value)


def _same_dsn(value: str | Dsn, text: str) -> bool:
    if isinstance(value, str) and value.strip() == text.strip():
        return True
    try:
        return (value if isinstance(value, Dsn) else Dsn.parse(value)) == Dsn.parse(text)
    except ValueError:
        return False


def _warn_env_dsn_ignored(variable: str, argument: str | Dsn) -> None:
    if isinstance(argument, str) and not argument.strip():
        given = "the empty DSN given in code turns errlink off"
    else:
        given = "the DSN given in code wins"
    warn(f"errlink: {given}; ${variable} is ignored (leave dsn unset to use it)")


def _validate_values(values: dict[str, Any]) -> None:
    values["sample_rate"] = _number("sample_rate", values.get("sample_rate", 1.0), 0.0, 1.0)
    for name, default in (
        ("max_breadcrumbs", 100),
        ("max_value_length", 1024),
        ("queue_size", 1000),
        ("max_event_bytes", 1_000_000),
        ("max_in_flight", 4),
    ):
        values[name] = _positive_int(
            name, values.get(name, default), allow_zero=name == "max_breadcrumbs"
        )
    values["queue_max_bytes"] = _queue_max_bytes(values.get("queue_max_bytes", QUEUE_MAX_BYTES))
    for name, default_float in (
        ("shutdown_timeout", 2.0),
        ("http_timeout", 10.0),
        ("max_locals_time", 0.05),
    ):
        values[name] = _number(name, values.get(name, default_float), 0.0, math.inf)
    for name in ("before_send", "before_breadcrumb", "before_send_log", "before_send_feedback"):
        hook = values.get(name)
        if hook is not None and not callable(hook):
            raise TypeError(f"option {name!r} must be callable or None, not {type(hook).__name__}")
    for name in (
        "include_locals",
        "capture_task_errors",
        "send_default_pii",
        "debug",
        "attach_stacktrace",
        "verify_tls",
        "enable_logs",
        "auto_session_tracking",
        "handle_sigterm",
    ):
        if name in values and not isinstance(values[name], bool):
            raise TypeError(f"option {name!r} must be True or False, not {values[name]!r}")
    values["ignore_errors"] = _ignore_errors(values.get("ignore_errors", ()))
    for name in ("in_app_include", "in_app_exclude", "scrub_keys"):
        values[name] = _strings(name, values.get(name, ()))
    values["tags"] = _tags(values.get("tags", {}))
    values["trace_propagation_targets"] = _patterns(
        "trace_propagation_targets", values.get("trace_propagation_targets", ())
    )
    for name, default in (
        ("max_attachment_bytes", MAX_ATTACHMENT_BYTES),
        ("queue_max_attachment_bytes", QUEUE_MAX_ATTACHMENT_BYTES),
    ):
        values[name] = _positive_int(name, values.get(name, default))
    size = values.get("max_request_body_size", "medium")
    if size not in REQUEST_BODY_SIZES:
        spelling = " (sentry-sdk's 'never' is 'none' in errlink)" if size == "never" else ""
        raise ValueError(
            f"option 'max_request_body_size' must be one of {', '.join(REQUEST_BODY_SIZES)}, "
            f"not {size!r}{spelling}"
        )
    for name in ("http_proxy", "ca_certs"):
        values[name] = _optional_str(name, values.get(name))
    if values.get("ca_certs") and not os.path.isfile(values["ca_certs"]):
        raise ValueError(
            f"option 'ca_certs' must name an existing file, not {values['ca_certs']!r}"
        )
    transport = values.get("transport")
    if transport is not None and not callable(getattr(transport, "send", None)):
        raise TypeError("option 'transport' must have an async send(envelope) method")
    _validate_outbox(values)


def _validate_outbox(values: dict[str, Any]) -> None:
    path = values.get("outbox")
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"option 'outbox' must be a path or None, not {type(path).__name__}")
        text = os.fspath(path)
        if not isinstance(text, str) or not text:
            raise ValueError("option 'outbox' must be a non-empty path to a file or a directory")
        if os.path.isdir(text):
            text = os.path.join(text, OUTBOX_FILE_NAME)
        values["outbox"] = os.path.abspath(text)
    values["outbox_max_mb"] = _number(
        "outbox_max_mb", values.get("outbox_max_mb", 50.0), 0.001, 1_000_000.0
    )
    values["outbox_max_age"] = _number(
        "outbox_max_age", values.get("outbox_max_age", 24 * 3600.0), 1.0, math.inf
    )
    values["outbox_drain_rate"] = _number(
        "outbox_drain_rate", values.get("outbox_drain_rate", 100.0), 0.01, math.inf
    )


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"option {name!r} must be a number, not {type(value).__name__}")
    if math.isnan(value) or not low <= value <= high:
        allowed = f"between {low} and {high}" if high != math.inf else f"at least {low}"
        raise ValueError(f"option {name!r} must be {allowed}, not {value!r}")
    return float(value)


def _positive_int(name: str, value: object, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"option {name!r} must be an integer, not {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        allowed = "zero or more" if allow_zero else "a positive integer"
        raise ValueError(f"option {name!r} must be {allowed}, not {value!r}")
    return value


def _queue_max_bytes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"option 'queue_max_bytes' must be an integer (bytes), not {type(value).__name__}"
        )
    if value < _QUEUE_MIN_BYTES:
        raise ValueError(
            f"option 'queue_max_bytes' must be at least {_QUEUE_MIN_BYTES} (bytes), not {value!r}"
        )
    return value


def _optional_str(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"option {name!r} must be a string or None, not {type(value).__name__}")
    return value or None


def _strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"option {name!r} must be a list of strings, not {type(value).__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise TypeError(f"option {name!r} must hold non-empty strings, found {item!r}")
    return items


def _ignore_errors(value: object) -> tuple[type[BaseException] | str, ...]:
    if isinstance(value, str | type) or not isinstance(value, Iterable):
        raise TypeError(
            "option 'ignore_errors' must be a list of exception classes or qualified names"
        )
    items = tuple(value)
    for item in items:
        if isinstance(item, str) and item:
            continue
        if isinstance(item, type) and issubclass(item, BaseException):
            continue
        raise TypeError(
            f"option 'ignore_errors' holds {item!r}: use exception classes or names "
            "such as 'KeyError' or 'myapp.errors.Expected'"
        )
    return items


def _tags(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"option 'tags' must be a mapping, not {type(value).__name__}")
    return {str(key): str(item) for key, item in value.items()}


def _patterns(name: str, value: object) -> tuple[str, ...]:
    """Strings that must each compile as a regular expression."""
    patterns = _strings(name, value)
    for pattern in patterns:
        _compiles(name, pattern)
    return patterns


def _compiles(name: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"option {name!r}: {pattern!r} is not a regular expression ({exc}); "
            f"use re.escape() for a literal host or URL"
        ) from None

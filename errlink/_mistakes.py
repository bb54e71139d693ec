"""Configuration mistakes: errlink's warning category, and help for an option name that is wrong.

A mistake errlink can work around (a settings key it does not know, an environment variable an
argument hides) is a `ConfigurationWarning`, issued by `warn` at the first frame outside errlink,
the user's line. Python's default filter then shows it on stderr once per line, with no logging
set up. A wrong option name is an error; `name_hint` says what was probably meant: a close
errlink name, errlink's name for a sentry-sdk option, or that errlink has no such feature.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Collection

__all__ = ["ConfigurationWarning", "name_hint", "warn"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class ConfigurationWarning(UserWarning):
    """A configuration mistake errlink worked around; shown once per line on stderr by default."""


def warn(message: str) -> None:
    """Issue `message` as a `ConfigurationWarning` at the caller's first frame outside errlink."""
    frame = sys._getframe(1)
    stacklevel = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, ConfigurationWarning, stacklevel=stacklevel)


# sentry-sdk options errlink has under another name.
_RENAMED = {
    "include_local_variables": "include_locals",
    "transport_queue_size": "queue_size",
    "https_proxy": "http_proxy",
    "event_scrubber": "scrub_keys",
}
_NO_TRACING = "not supported: errlink reports errors, and has no tracing or profiling"
_NO_EQUIVALENT = "a sentry-sdk option errlink has no equivalent for"
# sentry-sdk options errlink does not have, and what to do instead.
_UNSUPPORTED = dict.fromkeys(
    (
        "traces_sample_rate",
        "traces_sampler",
        "enable_tracing",
        "trace_propagation_targets",
        "propagate_traces",
        "trace_lifecycle",
        "functions_to_trace",
        "before_send_transaction",
        "before_send_span",
        "ignore_spans",
        "trace_ignore_status_codes",
        "strict_trace_continuation",
        "enable_db_query_source",
        "db_query_source_threshold_ms",
        "enable_http_request_source",
        "http_request_source_threshold_ms",
        "instrumenter",
        "profiles_sample_rate",
        "profiles_sampler",
        "profiler_mode",
        "profile_lifecycle",
        "profile_session_sample_rate",
    ),
    _NO_TRACING,
) | {
    "auto_session_tracking": "not supported: errlink does not track release health sessions",
    "enable_logs": "not supported: errlink.init() turns log records into events and "
    "breadcrumbs, set by logging_event_level and logging_breadcrumb_level",
    "before_send_log": "not supported: errlink does not send Sentry logs",
    "enable_metrics": "not supported: errlink sends no metrics",
    "before_send_metric": "not supported: errlink sends no metrics",
    "error_sampler": "not supported: use sample_rate, or a before_send that returns None",
    "auto_enabling_integrations": "not supported: errlink.init() takes integrations=[...] "
    "and default_integrations=False",
    "disabled_integrations": "not supported: errlink.init() takes integrations=[...] "
    "and default_integrations=False",
    "include_source_context": "not supported: errlink always sends the source lines around "
    "each frame",
    **dict.fromkeys(
        (
            "dist",
            "max_stack_frames",
            "add_full_stack",
            "custom_repr",
            "socket_options",
            "keep_alive",
            "proxy_headers",
            "cert_file",
            "key_file",
            "spotlight",
            "project_root",
            "send_client_reports",
            "enable_backpressure_handling",
        ),
        _NO_EQUIVALENT,
    ),
}


def name_hint(
    name: str,
    known: Collection[str],
    *,
    init_only: Collection[str] = (),
    spell: Callable[[str], str] = repr,
) -> str:
    """What the unknown `name` probably meant, or "" when nothing fits.

    `known` holds the names the caller accepts, `init_only` those only `errlink.init()` takes;
    `spell` writes a name as the user would (``repr`` for an option, ``ERRLINK_ENVIRONMENT`` for a
    Flask config key).
    """
    renamed = _RENAMED.get(name)
    if renamed is not None and renamed in known:
        return f"sentry-sdk's name for errlink's {spell(renamed)}"
    if name in init_only:
        return "an option of errlink.init() only"
    if name in _UNSUPPORTED:
        return _UNSUPPORTED[name]
    import difflib  # only when an option is wrong: not worth its start-up time otherwise

    close = difflib.get_close_matches(name, {*known, *init_only}, n=1)
    if not close:
        return ""
    where = ", an option of errlink.init() only" if close[0] not in known else ""
    return f"did you mean {spell(close[0])}{where}?"

"""Which issue an event belongs to: a stable hash of what makes two events "the same error".

In order of precedence:

- the event's `fingerprint`, where the variable `{{ default }}` stands for the default grouping;
- the exception chain: each exception's type plus its in-app frames' module and function (all
  frames when none is in-app). Line numbers and values are left out, so editing code above the
  failing line, or a different id in the message, keeps the group;
- the message template (`logentry.message`, as the logging integration sends it), else the
  formatted message.

A message sent with its stack dressed up as an exception (JavaScript SDKs' `captureMessage`
with `attachStacktrace`) is a message: titled and grouped by its text, like one sent without.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

_TITLE_MAX = 200
_DEFAULT_VARIABLE = re.compile(r"\{\{\s*default\s*\}\}", re.IGNORECASE)
_NO_MESSAGE = "<no message>"


@dataclass(frozen=True)
class GroupKey:
    hash: str  # 32 hex characters
    title: str
    culprit: str | None


def group_key(event: dict[str, Any]) -> GroupKey:
    default = default_components(event)
    fingerprint = event.get("fingerprint")
    if isinstance(fingerprint, str):
        fingerprint = [fingerprint]
    components: list[Any] = default
    if isinstance(fingerprint, list) and fingerprint:
        parts = [
            default if _is_default_variable(part) else _fingerprint_text(part)
            for part in fingerprint
        ]
        if parts != [default]:  # ["{{ default }}"] alone is the default grouping
            components = ["fingerprint", *parts]
    digest = hashlib.sha256(
        json.dumps(components, ensure_ascii=True, separators=(",", ":")).encode()
    ).hexdigest()
    return GroupKey(digest[:32], title(event), culprit(event))


def _is_default_variable(part: object) -> bool:
    return isinstance(part, str) and _DEFAULT_VARIABLE.fullmatch(part.strip()) is not None


def _fingerprint_text(part: object) -> str:
    return part if isinstance(part, str) else json.dumps(part, sort_keys=True, default=str)


def default_components(event: dict[str, Any]) -> list[Any]:
    exceptions = _real_exceptions(event)
    if exceptions:
        return ["exception", *_exception_components(exceptions)]
    template = message_template(event)
    if template is not None:
        return ["message", template]
    return ["empty"]


def _exception_components(exceptions: list[dict[str, Any]]) -> list[Any]:
    chain_frames = [_frames(exception) for exception in exceptions]
    any_in_app = any(frame.get("in_app") is True for frames in chain_frames for frame in frames)
    any_frames = any(chain_frames)
    parts: list[Any] = []
    for exception, frames in zip(exceptions, chain_frames, strict=True):
        part: list[Any] = [_text(exception.get("type"))]
        if any_frames:
            chosen = [f for f in frames if f.get("in_app") is True] if any_in_app else frames
            part.append(_collapse_recursion([_frame_identity(frame) for frame in chosen]))
        else:
            # Nothing else to tell the errors apart: the value has to carry the identity.
            part.append(_text(exception.get("value")))
        parts.append(part)
    return parts


def _frame_identity(frame: dict[str, Any]) -> list[str]:
    where = frame.get("module") or frame.get("filename") or frame.get("abs_path")
    return [_text(where), _text(frame.get("function"))]


def _collapse_recursion(identities: list[list[str]]) -> list[list[str]]:
    # A recursion's depth usually depends on the input: count it once.
    collapsed: list[list[str]] = []
    for identity in identities:
        if not collapsed or collapsed[-1] != identity:
            collapsed.append(identity)
    return collapsed


def message_template(event: dict[str, Any]) -> str | None:
    """The message before formatting when the event says so, else the formatted message."""
    return _message_text(event, ("message", "formatted"))


def formatted_message(event: dict[str, Any]) -> str | None:
    """The formatted message when the event has one, else the template."""
    return _message_text(event, ("formatted", "message"))


def _message_text(event: dict[str, Any], preference: tuple[str, str]) -> str | None:
    # `logentry` is the protocol's name; older SDKs send `message` (a string or the same dict).
    for key in ("logentry", "message"):
        value = event.get(key)
        if isinstance(value, dict):
            for field in preference:
                text = value.get(field)
                if isinstance(text, str) and text:
                    return text
        elif isinstance(value, str) and value:
            return value
    return None


def title(event: dict[str, Any]) -> str:
    exceptions = _real_exceptions(event)
    if exceptions:
        main = exceptions[-1]  # oldest first: the last one is what was finally raised
        kind = _text(main.get("type")) or "Error"
        value = main.get("value")
        text = f"{kind}: {_first_line(value)}" if isinstance(value, str) and value else kind
    else:
        text = _first_line(formatted_message(event) or "") or _NO_MESSAGE
    return _cut(text)


def culprit(event: dict[str, Any]) -> str | None:
    """Where it happened: the newest in-app frame of the raised exception (or of the stack a
    message was sent with), else the transaction or the logger."""
    exceptions = _exceptions(event)
    if exceptions:
        frames = _frames(exceptions[-1])
        in_app = [frame for frame in frames if frame.get("in_app") is True]
        for frame in reversed(in_app or frames):
            where = frame.get("module") or frame.get("filename")
            function = frame.get("function")
            if isinstance(where, str) and isinstance(function, str):
                return _cut(f"{where} in {function}")
    for key in ("transaction", "logger"):
        value = event.get(key)
        if isinstance(value, str) and value:
            return _cut(value)
    return None


def is_synthetic_message(event: dict[str, Any]) -> bool:
    """Whether the event is a message whose only exception just carries the stack it was sent
    from: marked `mechanism.synthetic`, or without a type and holding the message as its value
    (what JavaScript SDKs send for `captureMessage` with `attachStacktrace`)."""
    exceptions = _exceptions(event)
    if len(exceptions) != 1:
        return False
    text = formatted_message(event)
    if text is None:
        return False
    exception = exceptions[0]
    mechanism = exception.get("mechanism")
    if isinstance(mechanism, dict) and mechanism.get("synthetic") is True:
        return True
    return not exception.get("type") and exception.get("value") in (text, message_template(event))


def exceptions_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The exception chain as listed (oldest first), keeping only well-formed entries."""
    return _exceptions(event)


def frames_of(exception: dict[str, Any]) -> list[dict[str, Any]]:
    return _frames(exception)


def _real_exceptions(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [] if is_synthetic_message(event) else _exceptions(event)


def _exceptions(event: dict[str, Any]) -> list[dict[str, Any]]:
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    if not isinstance(values, list):
        return []
    return [value for value in values if isinstance(value, dict)]


def _frames(exception: dict[str, Any]) -> list[dict[str, Any]]:
    stacktrace = exception.get("stacktrace")
    frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
    if not isinstance(frames, list):
        return []
    return [frame for frame in frames if isinstance(frame, dict)]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _first_line(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return value.strip().split("\n", 1)[0]


def _cut(text: str) -> str:
    text = text if len(text) <= _TITLE_MAX else text[: _TITLE_MAX - 1] + "…"
    # JSON may carry lone surrogates ("\ud800"); SQLite only takes valid UTF-8.
    return text.encode("utf-8", "replace").decode("utf-8")

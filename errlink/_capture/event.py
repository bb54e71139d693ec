"""Assembling complete, bounded, scrubbed event dicts in the caller's thread or task.

Only CPU work happens here: frames, locals, scope data. Encoding to JSON is left to the sender.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from types import FrameType
from typing import Any

from .._delivery.trace_header import DSC_KEY
from .._options import Event, Options
from .._version import __version__
from .._wire.ids import new_event_id
from .exceptions import exception_values
from .levels import normalize_level
from .pending_crumbs import described
from .repr_guard import SlowReprs
from .reprs import type_name
from .scope import Scope
from .scrub import Scrubber
from .serialize import Meta, Serializer
from .stacktrace import FrameExtractor
from .trace import dynamic_sampling_context
from .trace import resolve as resolve_trace

SDK_NAME = "errlink"


def sdk_info(integrations: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "name": SDK_NAME,
        "version": __version__,
        "integrations": sorted(integrations),
        "packages": [{"name": f"pypi:{SDK_NAME}", "version": __version__}],
    }


def _static_contexts() -> dict[str, Any]:
    implementation = platform.python_implementation()
    return {
        "runtime": {
            "name": implementation,
            "version": platform.python_version(),
            "build": sys.version,
        },
        "os": {"name": platform.system(), "version": platform.release()},
    }


class EventBuilder:
    """Builds events for one client's options."""

    def __init__(self, options: Options, integrations: Sequence[str] = ()) -> None:
        self.options = options
        self.scrubber = Scrubber(
            extra_keys=options.scrub_keys, send_default_pii=options.send_default_pii
        )
        # What this client's captures found slow to repr (counted in its stats).
        self.slow_reprs = SlowReprs()
        self.serializer = Serializer(
            max_value_length=options.max_value_length,
            scrubber=self.scrubber,
            slow_reprs=self.slow_reprs,
        )
        # Hand-made events nest protocol structures (exception > stacktrace > frames > vars)
        # deeper than locals may go; they get room for that, with the same scrubbing.
        self.protocol_serializer = Serializer(
            max_value_length=options.max_value_length,
            max_depth=10,
            max_breadth=200,
            max_nodes=20_000,
            scrubber=self.scrubber,
            slow_reprs=self.slow_reprs,
        )
        # Text rather than data values (see `scrub`): URLs, templates, breadcrumb categories,
        # hand-made exceptions; and messages.
        self.text_serializer = Serializer(
            max_value_length=options.max_value_length,
            scrubber=self.scrubber.for_text(),
            slow_reprs=self.slow_reprs,
        )
        self._protocol_texts = Serializer(
            max_value_length=options.max_value_length,
            max_depth=10,
            max_breadth=200,
            max_nodes=20_000,
            scrubber=self.scrubber.for_text(),
            slow_reprs=self.slow_reprs,
        )
        self._messages = Serializer(
            max_value_length=options.max_value_length,
            scrubber=self.scrubber.for_messages(),
            slow_reprs=self.slow_reprs,
        )
        self._request_texts = Serializer(
            max_value_length=options.max_value_length,
            scrubber=self.scrubber.for_urls(),
            slow_reprs=self.slow_reprs,
        )
        self.frames = FrameExtractor(
            vars_normalizers=self.serializer.mapping_normalizer if options.include_locals else None,
            include_locals=options.include_locals,
            in_app_include=options.in_app_include,
            in_app_exclude=options.in_app_exclude,
            max_locals_time=options.max_locals_time,
        )
        self.sdk = sdk_info(integrations)
        self._contexts = _static_contexts()
        self._static: dict[str, Any] = {"platform": "python"}
        for name in ("server_name", "release", "environment"):
            value = getattr(options, name)
            if value is not None:
                self._static[name] = value
        if "server_name" in self._static:  # a host name is a data value to Relay
            self._static["server_name"] = self.scrubber.scrub_value(self._static["server_name"])

    def exception_event(
        self,
        exc: BaseException,
        scope: Scope,
        fields: Mapping[str, Any],
        *,
        handled: bool = True,
        mechanism: str = "generic",
    ) -> Event:
        event = self._new_event("error")
        values_meta: Meta = {}
        with self.frames.locals_budget():  # one budget for the whole exception chain
            event["exception"] = {
                "values": exception_values(
                    exc,
                    frames=self.frames,
                    mechanism_type=mechanism,
                    handled=handled,
                    meta=values_meta,
                    slow_reprs=self.slow_reprs,
                )
            }
        # Exception messages are text like any other: card numbers in them are filtered too.
        for value in event["exception"]["values"]:
            value["value"] = self.scrubber.scrub_text(value.get("value"))
        meta: Meta = {}
        if values_meta:
            meta["exception"] = {"values": values_meta}
        self._merge(event, scope, fields, meta)
        return event

    def message_event(
        self,
        message: str,
        level: str,
        scope: Scope,
        fields: Mapping[str, Any],
        *,
        stack_from: FrameType | None = None,
    ) -> Event:
        event = self._new_event(level)
        meta: Meta = {}
        fields = dict(fields)
        logentry = fields.pop("logentry", None)
        entry_meta: Meta = {}
        # The message is scrubbed as a message, the template as text, the params as data.
        entry = self._messages.normalize_mapping({"formatted": message}, entry_meta)
        if isinstance(logentry, Mapping):
            # A template and its params (from logging) let a server group by the template.
            if "message" in logentry:
                template = {"message": logentry["message"]}
                entry.update(self.text_serializer.normalize_mapping(template, entry_meta))
            if "params" in logentry:
                params = {"params": logentry["params"]}
                entry.update(self.serializer.normalize_mapping(params, entry_meta))
        event["logentry"] = entry
        if entry_meta:
            meta["logentry"] = entry_meta
        if stack_from is not None:
            stack_meta: Meta = {}
            stacktrace = self.frames.from_stack(stack_from, stack_meta)
            if stacktrace.get("frames"):
                event["threads"] = {
                    "values": [{"stacktrace": stacktrace, "current": True, "crashed": False}]
                }
                if stack_meta:
                    meta["threads"] = {"values": {"0": {"stacktrace": stack_meta}}}
        self._merge(event, scope, fields, meta)
        return event

    def finish_custom_event(self, event: Mapping[str, Any], scope: Scope) -> Event:
        """A user-supplied event dict, completed with ids, scope and static data, and normalized."""
        base = self._new_event(
            normalize_level(event.get("level") or "error", "capture_event", "error") or "error"
        )
        fields = dict(event)
        for name in ("exception", "message", "threads", "logentry"):
            if name in fields:
                base[name] = self._protocol_texts.normalize(fields.pop(name))
        message = base.pop("message", None)
        if message is not None and "logentry" not in base:
            # `message` is the protocol's older name for `logentry`; send one canonical form.
            base["logentry"] = {"formatted": message} if isinstance(message, str) else message
        _rescrub_protocol_data(base, self.protocol_serializer, self.scrubber)
        for name in ("event_id", "timestamp"):
            if name in fields:
                base[name] = fields.pop(name)
        meta: Meta = {}
        self._merge(base, scope, fields, meta)
        return base

    def breadcrumb(self, crumb: Mapping[str, Any]) -> dict[str, Any]:
        normalized = normalize_breadcrumb(self.serializer, self.text_serializer, crumb)
        if "timestamp" not in normalized:
            normalized["timestamp"] = time.time()
        return normalized

    def _new_event(self, level: str) -> Event:
        event: Event = {
            "event_id": new_event_id(),
            "timestamp": time.time(),
            "level": level,
            "sdk": self.sdk,
            **self._static,
        }
        return event

    def _merge(self, event: Event, scope: Scope, fields: Mapping[str, Any], meta: Meta) -> None:
        """Layer scope and call-site fields over the event: call site, then scope, then options."""
        serializer = self.serializer
        extra_fields = dict(fields)

        level = extra_fields.pop("level", None)
        if level:
            level = normalize_level(level, "capture", None)
        level = level or scope.level
        if level:
            event["level"] = level
        for name in ("transaction", "logger"):
            value = extra_fields.pop(name, None) or getattr(scope, name, None)
            if callable(value):
                value = _named_late(value, name, meta)
            if value:
                text = _text_or_meta(value, name, meta)
                if text is not None:
                    event[name] = text
        fingerprint = extra_fields.pop("fingerprint", None) or scope.fingerprint
        if fingerprint:
            parts = _fingerprint_or_meta(fingerprint, meta)
            if parts is not None:
                event["fingerprint"] = parts

        tags = dict(self.options.tags)
        tags.update(scope.tags)
        call_tags = extra_fields.pop("tags", None)
        if call_tags:
            # Values are made text safely below: a __str__ that raises must not lose the event.
            tags.update((serializer.safe_str(key), value) for key, value in call_tags.items())
        if tags:
            event["tags"] = {key: serializer.safe_str(value) for key, value in tags.items()}

        extra = dict(scope.extra)
        extra.update(extra_fields.pop("extra", None) or {})
        if extra:
            node: Meta = {}
            event["extra"] = serializer.normalize_mapping(extra, node)
            if node:
                meta["extra"] = node

        contexts: dict[str, Any] = dict(self._contexts)
        contexts.update(scope.contexts)
        contexts.update(extra_fields.pop("contexts", None) or {})
        node = {}
        event["contexts"] = serializer.normalize_mapping(contexts, node)
        if node:
            meta["contexts"] = node
        self._add_trace(event["contexts"], scope)

        user = extra_fields.pop("user", None) or scope.user
        if user:
            node = {}
            event["user"] = serializer.normalize_mapping(self.scrubber.scrub_user(dict(user)), node)
            if node:
                meta["user"] = node

        request = extra_fields.pop("request", None) or scope.request
        if request:
            node = {}
            event["request"] = self._request(request, node)
            if node:
                meta["request"] = node

        limit = self.options.max_breadcrumbs
        crumbs = self._breadcrumbs(scope.breadcrumbs(limit)) if limit else []
        if crumbs:
            event["breadcrumbs"] = {"values": crumbs}

        for name, value in extra_fields.items():  # any other protocol field given at the call site
            node = {}
            event[name] = serializer.normalize(value, node)
            if node:
                meta[name] = node

        if meta:
            event["_meta"] = meta

    def _request(self, request: Mapping[str, Any], meta: Meta) -> dict[str, Any]:
        """The scrubbed ``request``: its URL, a query string given as text and its User-Agent
        as text (`Scrubber.for_urls`), everything else as data values."""
        data = self.scrubber.scrub_request(dict(request))
        texts, agents = self.scrubber.request_texts(data)
        result = self.serializer.normalize_mapping(data, meta)
        if texts:
            result.update(self._request_texts.normalize_mapping(texts, meta))
        if agents:
            node: Meta = meta.get("headers", {})
            headers = result.get("headers")
            if not isinstance(headers, dict):
                headers = result["headers"] = {}
            headers.update(self._request_texts.normalize_mapping(agents, node))
            if node:
                meta["headers"] = node
        return result

    def _breadcrumbs(self, crumbs: list[Any]) -> list[dict[str, Any]]:
        """The scope's breadcrumbs; those kept as facts are described now and normalized like
        any breadcrumb (an integration's own description of them is not scrubbed as data)."""
        result: list[dict[str, Any]] = []
        for crumb in crumbs:
            if type(crumb) is dict:
                result.append(crumb)
            else:
                result.extend(self.breadcrumb(description) for description in described([crumb]))
        return result

    def _add_trace(self, contexts: dict[str, Any], scope: Scope) -> None:
        """``contexts.trace`` from the scope's trace (unless the caller gave one), with the DSC
        that `Pipeline.submit` moves into the envelope's ``trace`` header."""
        given = contexts.get("trace")
        if isinstance(given, dict) and given.get("trace_id"):
            return
        context = resolve_trace(scope.trace)
        trace = context.trace_context()
        options = self.options
        trace[DSC_KEY] = dynamic_sampling_context(
            context,
            options.dsn.public_key if options.dsn is not None else None,
            options.release,
            options.environment,
        )
        contexts["trace"] = trace


def normalize_breadcrumb(
    values: Serializer, texts: Serializer, crumb: Mapping[str, Any]
) -> dict[str, Any]:
    """``crumb`` normalized: its message and data as data values (``values``), its category,
    type and level as text (``texts``): a logger named `myapp.auth` is no secret."""
    data = {name: crumb[name] for name in ("message", "data") if name in crumb}
    if len(data) == len(crumb):
        return values.normalize_mapping(crumb)
    normalized = texts.normalize_mapping({k: v for k, v in crumb.items() if k not in data})
    if data:
        normalized.update(values.normalize_mapping(data))
    return normalized


def _rescrub_protocol_data(event: Event, serializer: Serializer, scrubber: Scrubber) -> None:
    """In a hand-made event's structures (normalized as text): what is data in them (frame
    locals, log params, mechanism data) normalized as data values, and its message as a
    message."""
    for name in ("exception", "threads"):
        holder = event.get(name)
        values = holder.get("values") if isinstance(holder, dict) else holder
        for value in values if isinstance(values, list) else ():
            if not isinstance(value, dict):
                continue
            mechanism = value.get("mechanism")
            if isinstance(mechanism, dict) and "data" in mechanism:
                mechanism["data"] = serializer.normalize(mechanism["data"])
            stacktrace = value.get("stacktrace")
            frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
            for frame in frames if isinstance(frames, list) else ():
                if isinstance(frame, dict) and "vars" in frame:
                    frame["vars"] = serializer.normalize(frame["vars"])
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        if "params" in logentry:
            logentry["params"] = serializer.normalize(logentry["params"])
        if isinstance(logentry.get("formatted"), str):
            logentry["formatted"] = scrubber.scrub_message(logentry["formatted"])


_MAX_FINGERPRINT_PARTS = 64


def _invalid(meta: Meta, name: str, reason: str) -> None:
    """Record in ``_meta`` that the field ``name`` was left out, the way Relay records it."""
    node = meta.setdefault(name, {}).setdefault("", {})
    node.setdefault("err", []).append(["invalid_data", {"reason": reason}])


def _named_late(name_it: Callable[[], object], name: str, meta: Meta) -> object:
    """The value of a field named once the request was routed (see `TransactionName`)."""
    try:
        return name_it()
    except Exception:
        _invalid(meta, name, "naming it raised")
        return None


def _text_or_meta(value: object, name: str, meta: Meta) -> str | None:
    """str(value) for a name field; None, noted in ``meta``, when str() raises."""
    if type(value) is str:
        return value
    try:
        text = str(value)
        return text if type(text) is str else str.__str__(text)
    except Exception:
        _invalid(meta, name, f"str() of the {type_name(value)} raised")
        return None


def _fingerprint_or_meta(fingerprint: object, meta: Meta) -> list[str] | None:
    """The parts of a fingerprint given at the call site as text; None, noted in ``meta``, when
    one cannot be made text (or the value is not a list of parts)."""
    try:
        if isinstance(fingerprint, str | bytes | int | float):
            return [_strict_str(fingerprint)]
        return [_strict_str(part) for part in islice(fingerprint, _MAX_FINGERPRINT_PARTS)]  # type: ignore[call-overload]
    except Exception:
        _invalid(meta, "fingerprint", f"a part of the {type_name(fingerprint)} is not text")
        return None


def _strict_str(value: object) -> str:
    if type(value) is str:
        return value
    text = str(value)
    return text if type(text) is str else str.__str__(text)

"""An event's payload as the sections of its page.

Payloads come from any SDK, so every field may be missing or of an unexpected type: each
section renders what it can understand and skips the rest (the raw JSON still shows it all).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._exception_links import links, note_after
from ._grouping import exceptions_of, formatted_message, frames_of, is_synthetic_message
from ._html import Markup, html, join, json_text, value_text
from ._templates import iso_time, level_badge, plural


def event_sections(payload: dict[str, Any]) -> Markup:
    return join(
        section
        for section in (
            _message(payload),
            _exception_chain(payload),
            _message_stack(payload),
            _breadcrumbs(payload),
            _request(payload),
            _mapping_section("User", payload.get("user"), "user"),
            _tags(payload.get("tags")),
            _contexts(payload.get("contexts")),
            _mapping_section("Extra", payload.get("extra"), "extra"),
            _details(payload),
            _raw_json(payload),
        )
        if section
    )


# -- message ----------------------------------------------------------------------------------


def _message(payload: dict[str, Any]) -> Markup:
    text = formatted_message(payload)
    if text is None:
        return Markup("")
    rows = [html('<pre class="message-text">{text}</pre>', text=text)]
    entry = payload.get("logentry")
    if isinstance(entry, dict):
        template, params = entry.get("message"), entry.get("params")
        if isinstance(template, str) and template != text:
            rows.append(html('<p class="muted">template: <code>{t}</code></p>', t=template))
        if params not in (None, [], {}):
            rows.append(html('<p class="muted">params: <code>{p}</code></p>', p=json_text(params)))
    return html('<h2 id="message">Message</h2>{rows}', rows=join(rows))


# -- exceptions -------------------------------------------------------------------------------


def _exception_chain(payload: dict[str, Any]) -> Markup:
    exceptions = exceptions_of(payload)
    if not exceptions or is_synthetic_message(payload):
        return Markup("")
    chain_links = links(exceptions)
    parts: list[Markup] = []
    for index, exception in enumerate(exceptions):
        if index > 0:
            note = note_after(index - 1, exceptions, chain_links[index - 1])
            parts.append(html('<p class="chain-note">{note}</p>', note=note))
        parts.append(_exception(exception))
    heading = "Exception" if len(exceptions) == 1 else "Exceptions (most recent last)"
    return html('<h2 id="exception">{heading}</h2>{parts}', heading=heading, parts=join(parts))


def _message_stack(payload: dict[str, Any]) -> Markup:
    """The stack a message was sent from: a JavaScript SDK's synthetic exception, the current
    thread's stack (sentry-python's `attach_stacktrace`), or a top-level `stacktrace`."""
    if is_synthetic_message(payload):
        holder: object = exceptions_of(payload)[0]
    elif exceptions_of(payload):
        return Markup("")
    else:
        holder = _current_thread(payload.get("threads")) or payload
    if not isinstance(holder, dict) or not frames_of(holder):
        return Markup("")
    return html(
        '<h2 id="stacktrace">Stack trace</h2>{note}{frames}',
        note=html('<p class="muted">where the message was sent</p>')
        if formatted_message(payload) is not None
        else "",
        frames=_frames(holder),
    )


def _current_thread(threads: object) -> dict[str, Any] | None:
    values = threads.get("values") if isinstance(threads, dict) else threads
    candidates = [thread for thread in _list(values) if isinstance(thread, dict)]
    for wanted in ("crashed", "current"):
        for thread in candidates:
            if thread.get(wanted) is True and frames_of(thread):
                return thread
    return next((thread for thread in candidates if frames_of(thread)), None)


def _exception(exception: dict[str, Any]) -> Markup:
    kind = _text(exception.get("type")) or "Error"
    module = _text(exception.get("module"))
    full_type = f"{module}.{kind}" if module and module not in ("builtins", "__main__") else kind
    value = exception.get("value")
    head = html(
        '<div class="exception-head"><span class="exception-type">{kind}</span>{sep}'
        '<span class="exception-value">{value}</span></div>',
        kind=full_type,
        sep=": " if value not in (None, "") else "",
        value=value_text(value) if value is not None else "",
    )
    mechanism = exception.get("mechanism")
    notes = Markup("")
    if isinstance(mechanism, dict):
        handled = mechanism.get("handled")
        handled_text = (
            {True: "handled", False: "unhandled"}.get(handled, "")
            if isinstance(handled, bool)
            else ""
        )
        notes = html(
            '<div class="muted mechanism">mechanism: {kind}{handled}</div>',
            kind=_text(mechanism.get("type")) or "?",
            handled=f", {handled_text}" if handled_text else "",
        )
    return html(
        '<section class="exception">{head}{notes}{frames}</section>',
        head=head,
        notes=notes,
        frames=_frames(exception),
    )


def _frames(exception: dict[str, Any]) -> Markup:
    frames = frames_of(exception)
    if not frames:
        return html('<p class="muted">no stack trace</p>')
    stacktrace = exception.get("stacktrace")
    omitted = stacktrace.get("frames_omitted") if isinstance(stacktrace, dict) else None
    any_in_app = any(frame.get("in_app") is True for frame in frames)
    crash_index = len(frames) - 1
    parts: list[Markup] = []
    folded: list[Markup] = []

    def fold() -> None:
        if folded:
            noun = "frame" if len(folded) == 1 else "frames"
            parts.append(
                html(
                    '<details class="library-frames"><summary>{n} library {noun}</summary>'
                    "{frames}</details>",
                    n=len(folded),
                    noun=noun,
                    frames=join(folded),
                )
            )
            folded.clear()

    for index, frame in enumerate(frames):
        in_app = frame.get("in_app") is True
        rendered = _frame(frame, in_app=in_app, is_crash=index == crash_index)
        if any_in_app and not in_app:
            folded.append(rendered)
        else:
            fold()
            parts.append(rendered)
    fold()
    note = Markup("")
    if isinstance(omitted, list) and len(omitted) == 2 and all(isinstance(n, int) for n in omitted):
        note = html(
            '<p class="muted">{n} frames in the middle of the stack were not sent</p>',
            n=omitted[1] - omitted[0],
        )
    return html(
        '<div class="frames"><p class="muted small">most recent call last</p>{note}{parts}</div>',
        note=note,
        parts=join(parts),
    )


def _frame(frame: dict[str, Any], *, in_app: bool, is_crash: bool) -> Markup:
    where = _text(frame.get("filename")) or _text(frame.get("module")) or "?"
    function = _text(frame.get("function")) or "?"
    lineno = frame.get("lineno")
    line_text = f", line {lineno}" if isinstance(lineno, int) else ""
    source = _source(frame, lineno if isinstance(lineno, int) else None)
    variables = frame.get("vars")
    locals_part = Markup("")
    if isinstance(variables, dict) and variables:
        locals_part = html(
            '<details class="locals"{open}><summary>{n}</summary>{table}</details>',
            open=Markup(" open") if is_crash else Markup(""),
            n=plural(len(variables), "local variable"),
            table=_kv_table(variables.items()),
        )
    return html(
        '<details class="frame {kind}"{open}><summary><code>{where}</code> in '
        "<code>{function}</code>{line}</summary>{source}{locals}</details>",
        kind="in-app" if in_app else "library",
        open=Markup(" open") if in_app or is_crash else Markup(""),
        where=where,
        function=function,
        line=line_text,
        source=source,
        locals=locals_part,
    )


def _source(frame: dict[str, Any], lineno: int | None) -> Markup:
    context_line = frame.get("context_line")
    if not isinstance(context_line, str):
        return Markup("")
    pre = [line for line in _list(frame.get("pre_context")) if isinstance(line, str)]
    post = [line for line in _list(frame.get("post_context")) if isinstance(line, str)]
    rows: list[Markup] = []
    first = lineno - len(pre) if lineno is not None else None
    for offset, line in enumerate([*pre, context_line, *post]):
        number = first + offset if first is not None else ""
        rows.append(
            html(
                '<tr{cls}><td class="lineno">{number}</td><td>{line}</td></tr>',
                cls=Markup(' class="context-line"') if offset == len(pre) else Markup(""),
                number=number,
                line=line,
            )
        )
    return html('<table class="source">{rows}</table>', rows=join(rows))


# -- breadcrumbs ------------------------------------------------------------------------------


def _breadcrumbs(payload: dict[str, Any]) -> Markup:
    crumbs = payload.get("breadcrumbs")
    values = crumbs.get("values") if isinstance(crumbs, dict) else crumbs
    items = [crumb for crumb in _list(values) if isinstance(crumb, dict)]
    if not items:
        return Markup("")
    rendered = []
    for crumb in items:
        level = _text(crumb.get("level")) or "info"
        data = crumb.get("data")
        rendered.append(
            html(
                '<li class="crumb crumb-{level}"><span class="crumb-time">{time}</span>'
                '<span class="crumb-category">{category}</span>{badge} '
                '<span class="crumb-message">{message}</span>{data}</li>',
                level=level,
                time=_crumb_time(crumb.get("timestamp")),
                category=_text(crumb.get("category")) or _text(crumb.get("type")) or "",
                badge=level_badge(level),
                message=value_text(crumb.get("message")) if "message" in crumb else "",
                data=html('<div class="crumb-data"><code>{d}</code></div>', d=json_text(data))
                if data not in (None, {}, [])
                else "",
            )
        )
    return html(
        '<h2 id="breadcrumbs">Breadcrumbs</h2><ol class="timeline">{items}</ol>',
        items=join(rendered),
    )


def _crumb_time(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso_time(float(value))[11:]  # the time of day; the date is the event's
    return _text(value)


# -- request, user, tags, contexts -----------------------------------------------------------


def _request(payload: dict[str, Any]) -> Markup:
    request = payload.get("request")
    if not isinstance(request, dict) or not request:
        return Markup("")
    method, address = _text(request.get("method")), _text(request.get("url"))
    parts = [html("<p><code>{line}</code></p>", line=f"{method} {address}".strip())]
    for label, key in (("Query string", "query_string"), ("Body", "data")):
        value = request.get(key)
        if value not in (None, "", {}, []):
            parts.append(
                html("<h3>{label}</h3><pre>{value}</pre>", label=label, value=_pretty(value))
            )
    for label, key in (("Headers", "headers"), ("Cookies", "cookies"), ("Environment", "env")):
        value = request.get(key)
        if isinstance(value, dict) and value:
            parts.append(
                html("<h3>{label}</h3>{table}", label=label, table=_kv_table(value.items()))
            )
        elif isinstance(value, list) and value:
            pairs = [(p[0], p[1]) for p in value if isinstance(p, list) and len(p) == 2]
            parts.append(html("<h3>{label}</h3>{table}", label=label, table=_kv_table(pairs)))
        elif isinstance(value, str) and value:
            parts.append(html("<h3>{label}</h3><pre>{value}</pre>", label=label, value=value))
    return html('<h2 id="request">Request</h2>{parts}', parts=join(parts))


def _tags(tags: object) -> Markup:
    if isinstance(tags, dict):
        pairs: list[tuple[object, object]] = list(tags.items())
    else:
        pairs = [(t[0], t[1]) for t in _list(tags) if isinstance(t, list) and len(t) == 2]
    if not pairs:
        return Markup("")
    chips = [
        html('<span class="tag"><b>{k}</b>: {v}</span>', k=value_text(k), v=value_text(v))
        for k, v in pairs
    ]
    return html('<h2 id="tags">Tags</h2><div class="tags">{chips}</div>', chips=join(chips))


def _contexts(contexts: object) -> Markup:
    if not isinstance(contexts, dict) or not contexts:
        return Markup("")
    parts = []
    for name, context in contexts.items():
        body = _kv_table(context.items()) if isinstance(context, dict) else _pretty_pre(context)
        parts.append(html("<h3>{name}</h3>{body}", name=name, body=body))
    return html('<h2 id="contexts">Contexts</h2>{parts}', parts=join(parts))


def _mapping_section(title: str, value: object, anchor: str) -> Markup:
    if not isinstance(value, dict) or not value:
        return Markup("")
    return html(
        '<h2 id="{anchor}">{title}</h2>{table}',
        anchor=anchor,
        title=title,
        table=_kv_table(value.items()),
    )


def _details(payload: dict[str, Any]) -> Markup:
    rows: list[tuple[object, object]] = []
    for key in ("platform", "logger", "transaction", "server_name", "release", "dist"):
        value = payload.get(key)
        if value not in (None, ""):
            rows.append((key, value))
    timestamp = payload.get("timestamp")
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        rows.append(("timestamp", iso_time(float(timestamp))))
    elif isinstance(timestamp, str):
        rows.append(("timestamp", timestamp))
    fingerprint = payload.get("fingerprint")
    if fingerprint:
        rows.append(("fingerprint", json_text(fingerprint)))
    sdk = payload.get("sdk")
    if isinstance(sdk, dict):
        rows.append(("sdk", f"{_text(sdk.get('name'))} {_text(sdk.get('version'))}".strip()))
    modules = payload.get("modules")
    table = _kv_table(rows) if rows else Markup("")
    module_list = Markup("")
    if isinstance(modules, dict) and modules:
        module_list = html(
            '<details class="modules"><summary>{n} installed packages</summary>{t}</details>',
            n=len(modules),
            t=_kv_table(sorted(modules.items(), key=lambda item: str(item[0]))),
        )
    if not rows and not module_list:
        return Markup("")
    return html('<h2 id="details">Details</h2>{t}{m}', t=table, m=module_list)


def _raw_json(payload: dict[str, Any]) -> Markup:
    return html(
        '<h2 id="raw">Raw JSON</h2><details class="raw"><summary>show the payload as received'
        "</summary><pre>{json}</pre></details>",
        json=json_text(payload, indent=2),
    )


# -- helpers ----------------------------------------------------------------------------------


def _kv_table(pairs: Iterable[tuple[object, object]]) -> Markup:
    rows = [
        html("<tr><th>{k}</th><td>{v}</td></tr>", k=value_text(k), v=_value_cell(v))
        for k, v in pairs
    ]
    return html('<table class="kv">{rows}</table>', rows=join(rows))


def _value_cell(value: object) -> Markup:
    if isinstance(value, (dict, list)):
        return _pretty_pre(value)
    return html("<code>{v}</code>", v=value_text(value))


def _pretty_pre(value: object) -> Markup:
    return html("<pre>{v}</pre>", v=_pretty(value))


def _pretty(value: object) -> str:
    return value if isinstance(value, str) else json_text(value, indent=2)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""

"""An event's payload as the sections of its page.

Payloads come from any SDK, so every field may be missing or of an unexpected type: each
section renders what it can understand and skips the rest (the raw JSON still shows it all).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ._grouping import formatted_message
from ._html import Markup, html, join, json_text, value_text
from ._stack_view import exception_chain, message_stack, thread_stacks
from ._templates import iso_time, kv_table, level_badge, pretty, pretty_pre

# What SDKs write in place of a scrubbed value.
FILTERED = "[Filtered]"


def event_sections(payload: dict[str, Any]) -> Markup:
    return join(
        section
        for section in (
            _message(payload),
            exception_chain(payload),
            message_stack(payload),
            thread_stacks(payload),
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
    parts.append(_query_string(request.get("query_string"), address))
    body = request.get("data")
    if body not in (None, "", {}, []):
        parts.append(html("<h3>Body</h3><pre>{value}</pre>", value=pretty(body)))
    for label, key in (("Headers", "headers"), ("Cookies", "cookies"), ("Environment", "env")):
        value = request.get(key)
        if isinstance(value, dict) and value:
            parts.append(
                html("<h3>{label}</h3>{table}", label=label, table=kv_table(value.items()))
            )
        elif isinstance(value, list) and value:
            pairs = [(p[0], p[1]) for p in value if isinstance(p, list) and len(p) == 2]
            parts.append(html("<h3>{label}</h3>{table}", label=label, table=kv_table(pairs)))
        elif isinstance(value, str) and value:
            parts.append(html("<h3>{label}</h3><pre>{value}</pre>", label=label, value=value))
    return html('<h2 id="request">Request</h2>{parts}', parts=join(parts))


def _query_string(value: object, address: str) -> Markup:
    """The query string as a table of its decoded parameters, in order (sent apart from the
    URL, or else read from it), with the text as sent below it."""
    if value in (None, "", {}, []):
        value = _url_query(address)
        if not value:
            return Markup("")
    pairs: list[tuple[object, object]]
    if isinstance(value, str):
        text = value.removeprefix("?")
        if text == FILTERED:  # the whole query string was scrubbed
            return html("<h3>Query string</h3><pre>{v}</pre>", v=text)
        pairs = list(urllib.parse.parse_qsl(text, keep_blank_values=True))
        as_sent = html('<p class="muted small">as sent: <code>{v}</code></p>', v=value)
    elif isinstance(value, dict):
        pairs, as_sent = list(value.items()), Markup("")
    else:  # Sentry's normalized form: a list of [name, value] pairs
        pairs = [(p[0], p[1]) for p in _list(value) if isinstance(p, list) and len(p) == 2]
        as_sent = Markup("")
    if not pairs:
        return html("<h3>Query string</h3><pre>{v}</pre>", v=pretty(value))
    return html(
        "<h3>Query string</h3>{table}{as_sent}",
        table=kv_table(pairs, css="kv query"),
        as_sent=as_sent,
    )


def _url_query(address: str) -> str:
    try:
        return urllib.parse.urlsplit(address).query
    except ValueError:  # not a URL Python can split (a bad IPv6 host, say)
        return ""


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
        body = kv_table(context.items()) if isinstance(context, dict) else pretty_pre(context)
        parts.append(html("<h3>{name}</h3>{body}", name=name, body=body))
    return html('<h2 id="contexts">Contexts</h2>{parts}', parts=join(parts))


def _mapping_section(title: str, value: object, anchor: str) -> Markup:
    if not isinstance(value, dict) or not value:
        return Markup("")
    return html(
        '<h2 id="{anchor}">{title}</h2>{table}',
        anchor=anchor,
        title=title,
        table=kv_table(value.items()),
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
    table = kv_table(rows) if rows else Markup("")
    module_list = Markup("")
    if isinstance(modules, dict) and modules:
        module_list = html(
            '<details class="modules"><summary>{n} installed packages</summary>{t}</details>',
            n=len(modules),
            t=kv_table(sorted(modules.items(), key=lambda item: str(item[0]))),
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


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""

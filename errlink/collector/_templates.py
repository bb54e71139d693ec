"""The page frame, the stylesheet, and small pieces shared by the UI's pages."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from ._html import Markup, html, join, json_text, value_text

STYLESHEET_PATH = "/_static/errlink.css"

# Scripts are never needed: collapsing is plain <details>. The policy is a second line of
# defence behind escaping, should user data ever slip through as markup.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

LEVELS = ("fatal", "error", "warning", "info", "debug")

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · errlink</title>
<link rel="stylesheet" href="{stylesheet}">
</head>
<body>
<header class="top"><a class="brand" href="/">errlink</a>
<a class="nav" href="/stats/">stats</a>
<a class="nav" href="/logs/">logs</a>
<a class="nav" href="/feedback/">feedback</a>
<a class="nav" href="/releases/">releases</a>
<a class="nav" href="/monitors/">monitors</a>
<span class="muted">local collector, for development: in production, send to Sentry,
GlitchTip or a Relay</span>
</header>
<main>
{body}
</main>
</body>
</html>
"""


def page(title: str, body: Markup) -> Markup:
    return html(_PAGE, title=title, body=body, stylesheet=STYLESHEET_PATH)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def level_badge(level: str | None) -> Markup:
    name = level if level in LEVELS else "other"
    return html('<span class="level level-{name}">{level}</span>', name=name, level=level or "?")


def kv_table(pairs: Iterable[tuple[object, object]], *, css: str = "kv") -> Markup:
    """A two-column table of names and values; lists and objects show as indented JSON."""
    rows = [
        html("<tr><th>{k}</th><td>{v}</td></tr>", k=value_text(k), v=_value_cell(v))
        for k, v in pairs
    ]
    return html('<table class="{css}">{rows}</table>', css=css, rows=join(rows))


def _value_cell(value: object) -> Markup:
    if isinstance(value, (dict, list)):
        return pretty_pre(value)
    return html("<code>{v}</code>", v=value_text(value))


def pretty_pre(value: object) -> Markup:
    return html("<pre>{v}</pre>", v=pretty(value))


def pretty(value: object) -> str:
    return value if isinstance(value, str) else json_text(value, indent=2)


def timestamp(seconds: float | None) -> Markup:
    """An absolute UTC time with how long ago it was, for people reading a list."""
    if seconds is None:
        return Markup("")
    return html(
        '<time datetime="{iso}" title="{iso}">{ago}</time>',
        iso=iso_time(seconds),
        ago=time_ago(seconds),
    )


def iso_time(seconds: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return str(seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_ago(seconds: float, now: float | None = None) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).timestamp() if now is None else now
    delta = now - seconds
    if delta < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta >= size:
            return f"{int(delta // size)} {unit} ago"
    return f"{int(delta)} s ago"


STYLESHEET = """
:root { --fg: #1d2330; --muted: #6b7280; --line: #e5e7eb; --bg: #f8f9fb; --accent: #4338ca;
  --mark: #fff3bf; --mark-edge: #f59f00; font-family: system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1.5rem;
  background: #1d2330; color: #fff; }
header.top .brand { color: #fff; font-weight: 700; font-size: 1.1rem; }
header.top .muted { color: #aab; font-size: .8rem; }
header.top .nav { color: #dde; font-size: .9rem; }
table.figures { width: auto; min-width: 20rem; margin-bottom: .5rem; }
.notice { background: #fff8e1; border: 1px solid #f59f00; padding: .3rem .6rem; margin: .5rem 0; }
/* Pages take the window's width; a long line wraps inside its box instead of widening it. */
main { padding: 1rem 1.5rem 3rem; min-width: 0; overflow-wrap: anywhere; }
h1 { font-size: 1.3rem; margin: .4rem 0; word-break: break-word; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line);
  padding-bottom: .2rem; }
h3 { font-size: .95rem; margin: 1rem 0 .3rem; }
.muted { color: var(--muted); }
.small { font-size: .8rem; margin: .3rem 0; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .85rem; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; font-size: .8rem; color: var(--muted); }
table.kv th { width: 14rem; word-break: break-word; }
table.kv td { word-break: break-word; }
td.num, th.num { text-align: right; white-space: nowrap; }
.level { display: inline-block; min-width: 4.2rem; text-align: center; border-radius: 3px;
  padding: 0 .3rem; font-size: .75rem; font-weight: 600; color: #fff; background: #6b7280; }
.level-fatal { background: #7f1d1d; } .level-error { background: #dc2626; }
.level-warning { background: #d97706; } .level-info { background: #2563eb; }
.level-debug { background: #6b7280; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center;
  margin: .5rem 0 1rem; }
form.filters input[type=search] { min-width: 18rem; padding: .3rem; }
form.filters select, form.filters button { padding: .3rem; }
.group-title { font-weight: 600; word-break: break-word; }
.culprit { font-size: .8rem; color: var(--muted); word-break: break-word; }
.stats { display: flex; flex-wrap: wrap; gap: 1.5rem; margin: .5rem 0; }
.stats div { display: flex; flex-direction: column; }
.stats .label { font-size: .75rem; color: var(--muted); }
nav.pages { margin: 1rem 0; display: flex; gap: 1rem; }
table.logs td.when { white-space: nowrap; } table.logs .log-body { white-space: pre-wrap; }
table.logs details { font-size: .8rem; }
ul.feedback { list-style: none; padding: 0; }
ul.feedback li { background: #fff; border: 1px solid var(--line); padding: .5rem .8rem;
  margin: .4rem 0; }
table.attachments { width: auto; min-width: 30rem; }
.empty { padding: 2rem; background: #fff; border: 1px dashed var(--line); }
section.exception { background: #fff; border: 1px solid var(--line); padding: .6rem .8rem;
  margin: .6rem 0; }
.exception-type { font-weight: 700; }
.exception-value { white-space: pre-wrap; word-break: break-word; }
.chain-note { margin: .8rem 0; font-style: italic; color: var(--muted); }
details.frame { border-top: 1px solid var(--line); }
details.frame > summary { cursor: pointer; padding: .3rem 0; font-size: .85rem; }
details.frame.in-app > summary { font-weight: 600; }
details.frame.library > summary { color: var(--muted); }
details.library-frames { margin: .2rem 0; padding: 0 .6rem; background: #f3f4f6; }
details.library-frames > summary { cursor: pointer; color: var(--muted); font-size: .8rem;
  padding: .2rem 0; }
table.source { margin: .2rem 0 .4rem; background: #fbfbfd; }
table.source td { border: 0; padding: 0 .5rem; font-family: ui-monospace, SFMono-Regular,
  Menlo, Consolas, monospace; font-size: .8rem; white-space: pre-wrap; }
table.source td.lineno { width: 3.5rem; text-align: right; color: var(--muted); }
table.source tr.context-line { background: var(--mark); }
table.source tr.context-line td.lineno { border-left: 3px solid var(--mark-edge); }
details.locals > summary { cursor: pointer; font-size: .8rem; color: var(--muted); }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 2px solid var(--line); }
ol.timeline li { position: relative; padding: .3rem .6rem .3rem 1rem; }
ol.timeline li::before { content: ""; position: absolute; left: -6px; top: .7rem; width: 10px;
  height: 10px; border-radius: 50%; background: #9ca3af; }
ol.timeline li.crumb-error::before, ol.timeline li.crumb-fatal::before { background: #dc2626; }
ol.timeline li.crumb-warning::before { background: #d97706; }
.crumb-time { color: var(--muted); font-size: .8rem; margin-right: .5rem; }
.crumb-category { font-weight: 600; font-size: .8rem; margin-right: .5rem; }
.crumb-message { white-space: pre-wrap; word-break: break-word; }
.crumb-data { color: var(--muted); font-size: .8rem; }
.tags { display: flex; flex-wrap: wrap; gap: .3rem; }
.tag { background: #eef2ff; border: 1px solid #c7d2fe; border-radius: 3px; padding: 0 .4rem;
  font-size: .8rem; word-break: break-word; }
details.raw > summary { cursor: pointer; }
details.raw pre { background: #fff; border: 1px solid var(--line); padding: .6rem; }
details.thread { background: #fff; border: 1px solid var(--line); padding: .4rem .8rem;
  margin: .6rem 0; }
summary.thread-head { cursor: pointer; font-weight: 600; }
.flag { display: inline-block; margin-left: .2rem; border-radius: 3px; padding: 0 .35rem;
  font-size: .75rem; font-weight: 600; color: #fff; background: #6b7280; }
.flag-crashed { background: #dc2626; } .flag-current { background: #2563eb; }
.jump { font-size: .9rem; }
.issue-layout { display: grid; grid-template-columns: minmax(0, 1fr) minmax(16rem, 26rem);
  gap: 2rem; align-items: start; }
@media (max-width: 1000px) { .issue-layout { grid-template-columns: minmax(0, 1fr); } }
.issue-main, .issue-side { min-width: 0; }
.latest-event { border-left: 3px solid var(--line); padding-left: 1rem; }
.breakdown { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr));
  gap: .8rem; }
.tag-card { background: #fff; border: 1px solid var(--line); padding: .4rem .6rem;
  min-width: 0; }
.tag-card h3 { margin: 0 0 .3rem; font-size: .85rem; }
.tag-card p.small { margin: .3rem 0 0; }
table.tag-values td { padding: .15rem .3rem; font-size: .8rem; border: 0; }
table.tag-values td.share { width: 5rem; }
table.tag-values meter { width: 100%; }
"""

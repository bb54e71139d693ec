"""Stacks on the event page: the exception chain, and stacks sent with a message or under
`threads`, all drawn with the same frames."""

from __future__ import annotations

from typing import Any

from ._exception_links import links, note_after
from ._grouping import exceptions_of, formatted_message, frames_of, is_synthetic_message
from ._html import Markup, html, join, value_text
from ._templates import kv_table, plural


def exception_chain(payload: dict[str, Any]) -> Markup:
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


def message_stack(payload: dict[str, Any]) -> Markup:
    """The stack a message was sent from when it came as a JavaScript SDK's synthetic exception
    or as a top-level `stacktrace` (stacks sent under `threads` are drawn by `thread_stacks`)."""
    if is_synthetic_message(payload):
        holder: object = exceptions_of(payload)[0]
    elif exceptions_of(payload) or threads_with_frames(payload):
        return Markup("")
    else:
        holder = payload
    if not isinstance(holder, dict) or not frames_of(holder):
        return Markup("")
    return html(
        '<h2 id="stacktrace">Stack trace</h2>{note}{frames}',
        note=_sent_from_note(payload),
        frames=_frames(holder),
    )


def _sent_from_note(payload: dict[str, Any]) -> Markup:
    if formatted_message(payload) is None:
        return Markup("")
    return html('<p class="muted">where the message was sent</p>')


# -- threads ----------------------------------------------------------------------------------


def threads_with_frames(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The event's threads that carry a stack trace, as listed."""
    threads = payload.get("threads")
    values = threads.get("values") if isinstance(threads, dict) else threads
    return [t for t in _list(values) if isinstance(t, dict) and frames_of(t)]


def thread_stacks(payload: dict[str, Any]) -> Markup:
    """Stacks sent under `threads`: the one a message was sent from (errlink's and
    sentry-python's `attach_stacktrace`, errlink's Lambda timeout warning), or every thread of
    a dump (native and JVM SDKs), each drawn like an exception's stack."""
    threads = threads_with_frames(payload)
    if not threads:
        return Markup("")
    exceptions_drawn = bool(exceptions_of(payload))
    if len(threads) == 1 and not exceptions_drawn:
        heading, anchor, note = "Stack trace", "stacktrace", _sent_from_note(payload)
    else:
        heading, anchor, note = f"Threads ({len(threads)})", "threads", Markup("")
    # The crashed and current threads are open; the others fold (a dump may list dozens).
    flagged = [t.get("crashed") is True or t.get("current") is True for t in threads]
    if not any(flagged):
        flagged[0] = True
    drawn = [_thread(thread, is_open=flagged[index]) for index, thread in enumerate(threads)]
    return html(
        '<h2 id="{anchor}">{heading}</h2>{note}{threads}',
        anchor=anchor,
        heading=heading,
        note=note,
        threads=join(drawn),
    )


def _thread(thread: dict[str, Any], *, is_open: bool) -> Markup:
    name = _text(thread.get("name"))
    ident = thread.get("id")
    has_id = isinstance(ident, (int, str)) and not isinstance(ident, bool) and ident != ""
    label = name or (f"thread {ident}" if has_id else "thread")
    flags = [
        html(' <span class="flag flag-{flag}">{flag}</span>', flag=flag)
        for flag in ("crashed", "current")
        if thread.get(flag) is True
    ]
    return html(
        '<details class="thread"{open}><summary class="thread-head">'
        '<span class="thread-name">{label}</span>{ident}{flags}</summary>{frames}</details>',
        open=Markup(" open") if is_open else Markup(""),
        label=label,
        ident=html(' <span class="muted">id {i}</span>', i=ident) if name and has_id else "",
        flags=join(flags),
        frames=_frames(thread),
    )


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
            table=kv_table(variables.items()),
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


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""

"""The collector's web UI over real HTTP: the group list, a group, an event; escaping, filters,
pagination, retention, and databases written by an older collector."""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium.webdriver.support.wait import WebDriverWait

from errlink import AsyncClient
from errlink._capture.scope import new_scope, set_request, set_tag, set_user
from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector import Collector, CollectorThread

XSS = '<script>window.__pwned = 1</script><img src=x onerror="alert(1)">'


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def new_event(**fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "platform": "python", "level": "error", **fields}


async def send(session: aiohttp.ClientSession, collector: Collector, *events: Any) -> None:
    """All events in one envelope: they are stored in one transaction, with one receive time."""
    envelope = Envelope({})
    for event in events:
        envelope.add_json("event", event)
    async with session.post(
        Dsn.parse(collector.dsn).envelope_url,
        data=envelope.to_bytes(),
        headers={"X-Sentry-Auth": Dsn.parse(collector.dsn).auth_header()},
    ) as response:
        assert response.status == 200, await response.text()


async def page(
    session: aiohttp.ClientSession, collector: Collector, path: str, status: int = 200
) -> str:
    async with session.get(collector.url + path, allow_redirects=False) as response:
        body = await response.text()
        assert response.status == status, body
        assert response.content_type == "text/html"
        assert "script-src" not in response.headers["Content-Security-Policy"]  # none at all
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        return body


def text_of(markup: str) -> str:
    """Roughly what a person reads: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def links(markup: str, prefix: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', markup) if h.startswith(prefix)]


def group_rows(markup: str) -> list[tuple[str, int]]:
    """(title, count) of each row of the group list, top to bottom."""
    rows = re.findall(
        r'class="group-title"[^>]*>(.*?)</a>.*?<td class="num">([\d,]+)</td>', markup, re.S
    )
    return [(text_of(title), int(count.replace(",", ""))) for title, count in rows]


def table_event_ids(markup: str) -> list[str]:
    """The event ids of a group page's table of events, top to bottom."""
    table = markup[markup.index('<table class="events">') :]
    return [h.split("/")[2] for h in links(table[: table.index("</table>")], "/events/")]


def message_event(text: str, **fields: Any) -> dict[str, Any]:
    return new_event(logentry={"formatted": text}, **fields)


def raise_in_checkout(order_id: int) -> None:
    basket = ["tea", "cups"]  # noqa: F841 - a local the page shows
    raise ValueError(f"order {order_id} has no items")


async def test_a_captured_error_from_list_to_group_to_event(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with AsyncClient(
        collector.dsn, environment="staging", release="1.4", send_default_pii=True
    ) as client:
        for order_id in (7, 8):
            with new_scope():
                errlink_context(order_id)
                try:
                    raise_in_checkout(order_id)
                except ValueError:
                    await client.capture_exception()
        await client.capture_message("nightly export done", level="info")
        assert await client.flush(10)

    listing = await page(session, collector, "/")
    # Newest first, with counts.
    assert group_rows(listing) == [
        ("nightly export done", 1),
        ("ValueError: order 8 has no items", 2),
    ]

    [group_link] = [h for h in links(listing, "/groups/") if h != "/groups/"][1:2]
    group = await page(session, collector, group_link)
    assert "ValueError: order 8 has no items" in text_of(group)
    event_links = links(group, "/events/")
    assert len(set(event_links)) == 2

    event = await page(session, collector, event_links[0])
    read = text_of(event)
    assert "ValueError: order 8 has no items" in read
    # The frame that raised, with its source, the line highlighted, and its locals.
    assert re.search(
        r'<tr class="context-line"><td class="lineno">\d+</td><td>\s*raise ValueError', event
    )
    assert 'basket [ "tea", "cups" ]' in read
    # Request, user, tags, contexts, the raw JSON.
    assert "POST https://shop.example/checkout?step=pay" in read
    assert "ada@example.com" in read
    assert '<span class="tag"><b>feature</b>: checkout</span>' in event
    assert "runtime" in read
    assert "CPython" in read
    assert "Raw JSON" in read
    assert '"event_id"' in text_of(event)
    assert "staging" in read
    assert "1.4" in read


def errlink_context(order_id: int) -> None:
    set_user({"id": str(order_id), "email": "ada@example.com"})
    set_tag("feature", "checkout")
    set_request({"method": "POST", "url": "https://shop.example/checkout?step=pay"})


async def test_library_frames_are_folded_and_app_frames_open(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    frames = [
        {"filename": "asyncio/runners.py", "function": "run", "lineno": 44, "in_app": False},
        {"filename": "shop/views.py", "function": "checkout", "lineno": 10, "in_app": True,
         "context_line": "    total = pay(cart)", "pre_context": ["def checkout(cart):"]},
        {"filename": "requests/api.py", "function": "post", "lineno": 5, "in_app": False},
        {"filename": "requests/sessions.py", "function": "send", "lineno": 9, "in_app": False},
        {"filename": "shop/pay.py", "function": "pay", "lineno": 3, "in_app": True,
         "context_line": "    raise PaymentError(reply)", "vars": {"reply": "'declined'"}},
    ]  # fmt: skip
    event = new_event(
        exception={"values": [{"type": "PaymentError", "value": "declined",
                               "stacktrace": {"frames": frames}}]}
    )  # fmt: skip
    await send(session, collector, event)
    body = await page(session, collector, f"/events/{event['event_id']}/")
    details = re.findall(r'<details class="(frame [\w-]+|library-frames)"( open)?>', body)
    assert details == [
        ("library-frames", ""),
        ("frame library", ""),
        ("frame in-app", " open"),
        ("library-frames", ""),
        ("frame library", ""),
        ("frame library", ""),
        ("frame in-app", " open"),
    ]
    assert "2 library frames" in text_of(body)
    assert '<td class="lineno">9</td><td>def checkout(cart):</td>' in body
    assert '<tr class="context-line"><td class="lineno">10</td>' in body


async def test_breadcrumbs_render_as_a_timeline(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = message_event(
        "payment failed",
        breadcrumbs={
            "values": [
                {"timestamp": 1700000000.25, "category": "http", "message": "POST /pay",
                 "level": "info", "data": {"status": 502}},
                {"timestamp": "2023-11-14T22:13:21Z", "category": "db", "message": "rollback",
                 "level": "warning"},
            ]
        },
    )  # fmt: skip
    await send(session, collector, event)
    body = await page(session, collector, f"/events/{event['event_id']}/")
    timeline = body[body.index('<ol class="timeline">') : body.index("</ol>")]
    read = text_of(timeline)
    assert read.index("POST /pay") < read.index("rollback")
    assert "22:13:20.250Z http info POST /pay" in read
    assert '{"status": 502}' in read
    assert '<li class="crumb crumb-warning">' in timeline


@pytest.mark.parametrize(
    "path", ["/", "/?environment={xss}", "/?q={xss}", "/groups/1/", "/events/{event_id}/"]
)
async def test_script_in_any_field_is_shown_as_text(
    collector: Collector, session: aiohttp.ClientSession, path: str
) -> None:
    event = new_event(
        level=XSS,
        environment=XSS,
        release=XSS,
        server_name=XSS,
        logger=XSS,
        transaction=XSS,
        fingerprint=[XSS],
        logentry={"formatted": XSS, "message": XSS, "params": [XSS]},
        exception={
            "values": [
                {
                    "type": XSS,
                    "value": XSS,
                    "module": XSS,
                    "mechanism": {"type": XSS, "handled": False, "source": XSS},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": XSS,
                                "module": XSS,
                                "function": XSS,
                                "lineno": 3,
                                "in_app": True,
                                "pre_context": [XSS],
                                "context_line": XSS,
                                "post_context": [XSS],
                                "vars": {XSS: XSS, "nested": {XSS: [XSS]}},
                            }
                        ]
                    },
                },
            ]
        },
        breadcrumbs={
            "values": [{"category": XSS, "message": XSS, "level": XSS, "data": {XSS: XSS}}]
        },
        request={
            "method": XSS,
            "url": XSS,
            "query_string": XSS,
            "data": {XSS: XSS},
            "headers": {XSS: XSS},
            "cookies": XSS,
            "env": {XSS: XSS},
        },
        user={XSS: XSS, "id": XSS},
        tags={XSS: XSS},
        contexts={XSS: {XSS: XSS}, "os": XSS},
        extra={XSS: XSS},
        sdk={"name": XSS, "version": XSS},
        modules={XSS: XSS},
    )
    await send(session, collector, event)
    quoted = urllib.parse.quote(XSS)
    body = await page(session, collector, path.format(xss=quoted, event_id=event["event_id"]))
    assert "<script" not in body.lower()
    assert "<img" not in body.lower()
    assert "onerror=&quot;" in body or path.startswith("/?q")  # shown, as text
    if not path.startswith("/?q"):
        assert XSS in text_of(body)


async def test_filters_by_environment_level_and_text(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    await send(
        session,
        collector,
        message_event("disk full on db-1", environment="prod", level="fatal"),
        message_event("disk full on db-1", environment="staging", level="fatal"),
        message_event("slow query", environment="prod", level="warning"),
        message_event("cache miss 100% of the time", level="info"),
    )

    async def titles(query: str) -> list[str]:
        body = await page(session, collector, "/?" + query)
        return [text_of(t) for t in re.findall(r'class="group-title"[^>]*>(.*?)</a>', body)]

    assert sorted(await titles("")) == [
        "cache miss 100% of the time",
        "disk full on db-1",
        "slow query",
    ]
    assert sorted(await titles("environment=prod")) == ["disk full on db-1", "slow query"]
    assert await titles("environment=staging") == ["disk full on db-1"]
    assert await titles("environment=%28none%29") == ["cache miss 100% of the time"]
    assert await titles("level=warning") == ["slow query"]
    assert await titles("environment=prod&level=fatal") == ["disk full on db-1"]
    assert await titles("q=DISK") == ["disk full on db-1"]
    assert await titles("q=100%25") == ["cache miss 100% of the time"]  # % is literal
    assert await titles("q=no_such_thing") == []
    assert "No issue matches" in text_of(await page(session, collector, "/?q=zzz"))
    # Counts within the chosen environment.
    body = await page(session, collector, "/?environment=prod")
    assert ("disk full on db-1", 1) in group_rows(body)
    options = re.findall(r'<option value="([^"]*)"', body)
    assert [o for o in options if o][:3] == ["(none)", "prod", "staging"]


async def test_group_list_pages_through_every_group_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # One envelope: 120 groups with the very same last-seen time, the hard case for paging.
    await send(session, collector, *[message_event(f"distinct problem {n}") for n in range(120)])
    await send(session, collector, message_event("distinct problem 5"))
    seen: list[str] = []
    path: str | None = "/?limit=50"
    pages = 0
    while path is not None:
        body = await page(session, collector, path)
        seen += [text_of(t) for t in re.findall(r'class="group-title"[^>]*>(.*?)</a>', body)]
        older = [h for h in links(body, "/?") if "after=" in h]
        path = older[0] if older else None
        pages += 1
    assert pages == 3
    assert len(seen) == 120
    assert set(seen) == {f"distinct problem {n}" for n in range(120)}
    assert seen[0] == "distinct problem 5"  # seen again last, so listed first


async def test_group_page_pages_through_its_events(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    events = [message_event("same problem") for _ in range(30)]
    for event in events:
        await send(session, collector, event)
    first = await page(session, collector, "/groups/1/?limit=20")
    assert "30" in text_of(first)
    [older] = [h for h in links(first, "/groups/1/") if "before=" in h]
    second = await page(session, collector, older)
    newest_first = [e["event_id"] for e in reversed(events)]
    # The "latest event" link comes first on every page, then the table.
    assert links(first, "/events/")[0] == links(second, "/events/")[0]
    assert links(first, "/events/")[0] == f"/events/{newest_first[0]}/"
    assert table_event_ids(first) == newest_first[:20]
    assert table_event_ids(second) == newest_first[20:]
    assert not [h for h in links(second, "/groups/1/") if "before=" in h]


async def test_event_page_links_its_group_and_neighbours(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    events = [message_event("flaky job", tags={"n": str(n)}) for n in range(3)]
    for event in events:
        await send(session, collector, event)
    body = await page(session, collector, f"/events/{events[1]['event_id']}/")
    assert f"/events/{events[0]['event_id']}/" in links(body, "/events/")
    assert f"/events/{events[2]['event_id']}/" in links(body, "/events/")
    assert "/groups/1/" in links(body, "/groups/")
    assert "(3 events)" in text_of(body)


async def test_missing_things_get_404_pages_and_bad_links_400(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    await page(session, collector, "/groups/999/", 404)
    await page(session, collector, "/groups/abc/", 404)
    await page(session, collector, f"/events/{uuid.uuid4().hex}/", 404)
    await page(session, collector, "/events/not-an-id/", 404)
    await page(session, collector, "/?after=garbage", 400)
    empty = await page(session, collector, "/")
    assert "No events yet" in text_of(empty)
    assert collector.dsn.replace("http://", "") in text_of(empty)


async def test_searching_an_event_id_opens_the_event(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = message_event("find me")
    await send(session, collector, event)
    dashed = str(uuid.UUID(event["event_id"]))
    async with session.get(f"{collector.url}/?q={dashed}", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == f"/events/{event['event_id']}/"


async def test_odd_payloads_render(collector: Collector, session: aiohttp.ClientSession) -> None:
    odd = [
        new_event(exception={"values": [{"stacktrace": {"frames": [None, {"lineno": "x"}]}}]}),
        new_event(exception=[{"type": "ListForm", "value": 3}]),
        new_event(breadcrumbs=[{"message": {"not": "text"}, "timestamp": None}]),
        new_event(request={"headers": [["X-A", "1"], "junk"], "cookies": {"c": 1}}),
        new_event(tags=[["k", "v"], ["broken"]], contexts={"gpu": "a string"}, user="nobody"),
        new_event(logentry={"formatted": "surrogate \ud800 here"}, extra={"deep": [[[[1]]]]}),
    ]
    await send(session, collector, *odd)
    for event in odd:
        await page(session, collector, f"/events/{event['event_id']}/")
    listing = await page(session, collector, "/")
    assert "surrogate ? here" in text_of(listing)


async def test_retention_keeps_the_newest_events_and_the_counts(tmp_path: Path) -> None:
    async with (
        Collector(db_path=tmp_path / "r.db", max_events=10) as collector,
        aiohttp.ClientSession() as session,
    ):
        old = [message_event("old problem") for _ in range(5)]
        new = [message_event("new problem") for _ in range(20)]
        for event in [*old, *new]:
            await send(session, collector, event)
        stored = [e["event_id"] for e in collector.events()]
        # 10 in all: "old problem"'s latest event, which its group keeps, and the newest 9.
        assert stored == [old[-1]["event_id"]] + [e["event_id"] for e in new[-9:]]
        counts = {group.title: group.count for group in collector.groups()}
        assert counts == {"old problem": 5, "new problem": 20}
        group_page = await page(session, collector, "/groups/2/")
        assert "11 older events were pruned" in text_of(group_page)
        assert "20" in text_of(group_page)


async def test_a_version_1_database_is_migrated_and_grouped(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    write_version_1_database(
        path,
        [
            message_event("legacy problem", environment="prod"),
            message_event("legacy problem", environment="dev"),
            new_event(exception={"values": [{"type": "KeyError", "value": "'x'"}]}),
        ],
    )
    async with (
        Collector(db_path=path) as collector,
        aiohttp.ClientSession() as session,
    ):
        assert {g.title: g.count for g in collector.groups()} == {
            "legacy problem": 2,
            "KeyError: 'x'": 1,
        }
        await send(session, collector, message_event("legacy problem", environment="prod"))
        body = await page(session, collector, "/?environment=prod")
        assert group_rows(body) == [("legacy problem", 2)]
        assert len(collector.events()) == 4
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert "events_message" not in indexes
        assert "events_group" in indexes


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(Exception, match="schema version 99"):
        async with Collector(db_path=path):
            pass


def write_version_1_database(path: Path, events: list[dict[str, Any]]) -> None:
    """A database as errlink's first collector wrote it (schema version 1)."""
    import json

    with sqlite3.connect(path) as db:
        db.executescript(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE events (id INTEGER PRIMARY KEY, received_at REAL NOT NULL,
                project_id TEXT NOT NULL, event_id TEXT NOT NULL, level TEXT NOT NULL,
                environment TEXT, release TEXT, exception_type TEXT, exception_value TEXT,
                message TEXT, payload TEXT NOT NULL);
            CREATE INDEX events_received_at ON events (received_at);
            CREATE INDEX events_event_id ON events (event_id);
            CREATE INDEX events_message ON events (message);
            CREATE TABLE client_reports (id INTEGER PRIMARY KEY, received_at REAL NOT NULL,
                project_id TEXT NOT NULL, payload TEXT NOT NULL);
            CREATE TABLE discarded_events (report_id INTEGER NOT NULL, reason TEXT NOT NULL,
                category TEXT NOT NULL, quantity INTEGER NOT NULL);
            PRAGMA user_version = 1;
            """
        )
        db.executemany(
            "INSERT INTO events (received_at, project_id, event_id, level, environment, "
            "payload) VALUES (?, '1', ?, ?, ?, ?)",
            [
                (1_700_000_000 + n, e["event_id"], e["level"], e.get("environment"), json.dumps(e))
                for n, e in enumerate(events)
            ],
        )


async def test_stylesheet_is_served_locally(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    body = await page(session, collector, "/")
    assert re.findall(r'(?:href|src)="(https?:)?//', body) == []
    async with session.get(collector.url + "/_static/errlink.css") as response:
        assert response.status == 200
        assert response.content_type == "text/css"
        assert "context-line" in await response.text()


async def test_groups_read_api(collector: Collector, session: aiohttp.ClientSession) -> None:
    await send(session, collector, *[message_event(f"api problem {n % 3}") for n in range(7)])
    async with session.get(f"{collector.url}/api/0/groups/?limit=2") as response:
        first = await response.json()
    assert len(first["groups"]) == 2
    assert first["next"]
    async with session.get(
        f"{collector.url}/api/0/groups/", params={"limit": "2", "after": first["next"]}
    ) as response:
        second = await response.json()
    assert len(second["groups"]) == 1
    assert second["next"] is None
    counts = sorted(g["count"] for g in first["groups"] + second["groups"])
    assert counts == [2, 2, 3]
    group_id = first["groups"][0]["id"]
    async with session.get(f"{collector.url}/api/0/groups/{group_id}/events/") as response:
        listed = await response.json()
    assert {e["group_id"] for e in listed["events"]} == {group_id}
    async with session.get(f"{collector.url}/api/0/groups/12345/events/") as response:
        assert response.status == 404


async def test_pages_answer_while_events_stream_in(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    await send(session, collector, message_event("stream 0"))

    async def ingest() -> None:
        for n in range(20):
            await send(session, collector, *[message_event(f"stream {n % 4}") for _ in range(10)])

    async def browse() -> list[int]:
        counts = []
        for _ in range(20):
            counts.append(
                sum(count for _, count in group_rows(await page(session, collector, "/")))
            )
            await page(session, collector, "/groups/1/")
        return counts

    _, seen = await asyncio.gather(ingest(), browse())
    assert seen == sorted(seen)  # every page is a consistent, growing snapshot
    assert sum(group.count for group in collector.groups()) == 201


# -- issue 23: the stats page: what was stored, only counted, or refused -----------------------

SDK_NAME = "sentry.python/2.76.0"


def post_raw(dsn: str, body: bytes, headers: dict[str, str]) -> int:
    """A blocking POST to the envelope endpoint (for the browser test's thread collector)."""
    request = urllib.request.Request(Dsn.parse(dsn).envelope_url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


def intake_of_every_kind(dsn: str, *, client: str = SDK_NAME) -> None:
    """Items that are not stored, one event, and refused requests of two kinds."""
    key = Dsn.parse(dsn).public_key
    auth = {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_client={client}"}
    envelope = Envelope({})
    for item_type in ("transaction", "session", "session", "profile"):
        envelope.add_json(item_type, {})
    envelope.add_json("event", message_event("kept"))
    assert post_raw(dsn, envelope.to_bytes(), auth) == 200
    for _ in range(2):
        compressed = {**auth, "Content-Encoding": "compress"}
        assert post_raw(dsn, envelope.to_bytes(), compressed) == 415
    wrong = {"X-Sentry-Auth": f"Sentry sentry_key=wrong, sentry_client={client}"}
    assert post_raw(dsn, envelope.to_bytes(), wrong) == 401


async def test_the_stats_page_shows_what_was_kept_counted_and_refused(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    empty = text_of(await page(session, collector, "/stats/"))
    assert "None so far." in empty
    await asyncio.to_thread(intake_of_every_kind, collector.dsn, client=XSS)

    listing = await page(session, collector, "/")
    assert "3 requests refused, 4 items received but not stored: see stats" in text_of(listing)
    assert links(listing, "/stats/") == ["/stats/", "/stats/"]  # the header's and the notice's

    stats = await page(session, collector, "/stats/")
    read = text_of(stats)
    assert "events 1 issues 1 client reports 0" in read
    assert "profile 1 session 2 transaction 1" in read
    assert "auth 401 1 invalid public key" in read
    assert "encoding 415 2 unsupported Content-Encoding 'compress'" in read
    assert "200 1 401 1 415 2" in read
    assert XSS not in stats  # the client's name is client data: shown as text
    assert html.escape(XSS) in stats


def test_refusals_and_items_not_stored_in_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.browser._chromium import headless_chromium

    def rows(browser: Any, table: str) -> list[list[str]]:
        found = browser.find_elements(By.CSS_SELECTOR, f"table.{table} tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in found]

    with CollectorThread(db_path=tmp_path / "c.db") as collector, headless_chromium() as browser:
        intake_of_every_kind(collector.dsn)
        browser.get(collector.ui_url)
        notice = browser.find_element(By.CSS_SELECTOR, ".notice")
        assert notice.text == "3 requests refused, 4 items received but not stored: see stats."

        notice.find_element(By.LINK_TEXT, "stats").click()
        WebDriverWait(browser, 20).until(lambda b: b.title == "Stats · errlink")
        assert rows(browser, "ignored") == [
            ["profile", "1"],
            ["session", "2"],
            ["transaction", "1"],
        ]
        refused = rows(browser, "refusals")
        assert [row[:3] for row in refused] == [["auth", "401", "1"], ["encoding", "415", "2"]]
        assert refused[1][3].startswith("unsupported Content-Encoding 'compress'")
        assert {row[4] for row in refused} == {SDK_NAME}
        assert rows(browser, "answers") == [["200", "1"], ["401", "1"], ["415", "2"]]
        # The header links to the stats from every page.
        browser.get(collector.ui_url)
        browser.find_element(By.CSS_SELECTOR, "header.top a.nav").click()
        WebDriverWait(browser, 20).until(lambda b: b.title == "Stats · errlink")


# -- issue 19, item 7: the collector shows what it stored ------------------------------------


def section(markup: str, anchor: str) -> str:
    """The markup of one event-page section: from its heading to the next one."""
    start = markup.index(f'<h2 id="{anchor}">')
    end = markup.find("<h2 ", start + 1)
    return markup[start : end if end != -1 else len(markup)]


def thread_heads(markup: str) -> list[str]:
    return [text_of(h) for h in re.findall(r'<summary class="thread-head">(.*?)</summary>', markup)]


async def warm_cache(client: AsyncClient) -> None:
    await client.capture_message("cache warm-up is slow", level="warning")


async def test_a_message_sent_with_its_stack_shows_its_thread_drawn_like_an_exception(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with AsyncClient(collector.dsn, attach_stacktrace=True) as client:
        await warm_cache(client)
    [event] = await collector.wait_for_events(1, 10)
    assert event["threads"]["values"][0]["current"] is True  # errlink's shape
    body = await page(session, collector, f"/events/{event['event_id']}/")
    stack = section(body, "stacktrace")
    assert thread_heads(stack) == ["thread current"]
    assert '<details class="thread" open>' in stack
    # The same frames as under an exception: the application's open, with source and locals.
    assert re.search(r'<details class="frame in-app" open><summary><code>\S+</code> in '
                     r"<code>warm_cache</code>", stack)  # fmt: skip
    assert re.search(r'<tr class="context-line">.*?await client\.capture_message', stack, re.S)
    assert "1 local variable" in text_of(stack)


async def test_sentry_python_messages_show_the_thread_they_were_sent_from(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    from tests.collector.test_third_party_sdks import sentry_python

    await sentry_python(collector, "messages", "no-brotli")
    events = await collector.wait_for_events(2, 15)
    for event in events:
        [thread] = event["threads"]["values"]
        assert (thread["current"], thread["crashed"]) == (True, False)  # sentry-python's shape
        stack = section(
            await page(session, collector, f"/events/{event['event_id']}/"), "stacktrace"
        )
        assert thread_heads(stack) == ["thread current"]
        assert re.search(r'class="frame in-app" open><summary>.*?<code>warn</code>', stack)


def test_a_lambda_timeout_warning_shows_the_handlers_stack(
    collector_thread: CollectorThread,
) -> None:
    from tests.browser._sample_app import lambda_timeout

    lambda_timeout(collector_thread.dsn, lambda: collector_thread.event_count() >= 1)
    [warning] = collector_thread.events()
    assert warning["tags"]["aws_lambda.timeout_warning"] == "true"
    with urllib.request.urlopen(f"{collector_thread.ui_url}events/{warning['event_id']}/") as r:
        body = r.read().decode()
    stack = section(body, "stacktrace")
    assert thread_heads(stack) == ["thread current"]
    assert "<code>lambda_timeout.&lt;locals&gt;.build_report</code>" in stack
    assert re.search(r'<tr class="context-line">.*?wait_until\(warned', stack, re.S)


async def test_every_thread_with_a_stack_is_drawn_with_its_name_id_and_flags(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    def stack(function: str) -> dict[str, Any]:
        return {"frames": [{"filename": "app.py", "function": function, "in_app": True}]}

    dump = new_event(
        exception={"values": [{"type": "Deadlock", "value": "db", "stacktrace": stack("lock")}]},
        threads={
            "values": [
                {"id": 1, "name": "main", "crashed": True},  # its stack is the exception's
                {"id": 2, "name": "io", "stacktrace": stack("poll")},
                {"id": "0x1f", "stacktrace": stack("flush"), "current": True},
                {"name": 7, "stacktrace": stack("tick")},
                {"id": 4, "stacktrace": {"frames": "broken"}},
            ]
        },
    )
    listed = message_event("threads as a plain list", threads=[{"stacktrace": stack("run")}])
    await send(session, collector, dump, listed)

    body = await page(session, collector, f"/events/{dump['event_id']}/")
    assert re.findall(r'<h2 id="(\w+)">', body)[:2] == ["exception", "threads"]
    threads = section(body, "threads")
    assert text_of(threads).startswith("Threads (3)")
    assert thread_heads(threads) == ["io id 2", "thread 0x1f current", "thread"]
    opened = re.findall(r'<details class="thread"( open)?>', threads)
    assert opened == ["", " open", ""]  # the current one; the others fold
    for function in ("poll", "flush", "tick"):
        assert f"<code>{function}</code>" in threads

    body = await page(session, collector, f"/events/{listed['event_id']}/")
    assert thread_heads(section(body, "stacktrace")) == ["thread"]
    assert '<details class="thread" open>' in body  # none is flagged: the first is open


def flaky(release: str | None, **fields: Any) -> dict[str, Any]:
    event = message_event("nightly sync timed out", **fields)
    if release is not None:
        event["release"] = release
    return event


async def test_the_issue_page_shows_its_latest_event_and_a_breakdown_of_its_tags(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    await send(
        session,
        collector,
        flaky("1.0", environment="prod", server_name="w1", tags={"region": "eu", "release": "x"}),
        flaky("1.1", environment="prod", server_name="w2", tags=[["region", "eu"], ["odd"]]),
        flaky("1.1", environment="prod", server_name="w1", tags={"region": "us"}),
        flaky(None, server_name="w1", tags={"region": "eu", "shard": "\ud800"}),
    )
    latest = message_event("nightly sync timed out", tags={"region": "ap"}, release="1.1")
    latest["logentry"]["formatted"] = "nightly sync timed out"
    await send(session, collector, latest)
    body = await page(session, collector, "/groups/1/")

    # The latest event, inline, as on its own page.
    inline = body[body.index('<div class="latest-event">') :]
    assert re.findall(r'<h2 id="(\w+)">', inline)[:2] == ["message", "tags"]
    assert '<span class="tag"><b>region</b>: ap</span>' in inline
    assert f'href="/events/{latest["event_id"]}/"' in body

    tags = text_of(body[body.index('<h2 id="tag-breakdown">') : body.index('<h2 id="events">')])
    assert "Counted over the issue's 5 stored events." in tags
    # The fields first, then the tags by how often they are set; a tag named like a field
    # is left out, and a tag's pairs may come as a list.
    assert re.findall(r"<h3>([^<]+)</h3>", body.split('id="tag-breakdown"')[1]) == [
        "release",
        "environment",
        "server_name",
        "region",
        "shard",
    ]
    assert "release 1.1 3 60% 1.0 1 20% not set: 1 event (20%)" in tags
    assert "environment prod 3 60% not set: 2 events (40%)" in tags
    assert "server_name w1 3 60% w2 1 20% not set: 1 event (20%)" in tags
    assert "region eu 3 60% ap 1 20% us 1 20%" in tags
    assert "shard ? 1 20% not set: 4 events (80%)" in tags  # a lone surrogate, as "?"
    assert '<meter min="0" max="5" value="3">' in body


async def test_the_tag_breakdown_counts_the_newest_thousand_events(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    await send(session, collector, *[flaky("1.0") for _ in range(10)])
    await send(session, collector, *[flaky("2.0") for _ in range(600)])
    await send(session, collector, *[flaky("2.0") for _ in range(400)])
    tags = text_of(await page(session, collector, "/groups/1/"))
    assert "Counted over the newest 1,000 stored events of this issue (of 1,010 received)." in tags
    assert "release 2.0 1,000 100%" in tags
    assert "1.0" not in tags.split("Latest event")[0]


async def test_the_tag_breakdown_reads_payloads_an_older_collector_wrote(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    # Version 1 stored NaN as a bare number, which SQLite's JSON functions refuse.
    write_version_1_database(
        path, [message_event("legacy", tags={"shard": "a"}, extra={"ratio": float("nan")})]
    )
    async with Collector(db_path=path) as collector, aiohttp.ClientSession() as session:
        tags = text_of(await page(session, collector, "/groups/1/"))
    assert "shard a 1 100%" in tags


# Percent-encoded and "+" for a space, a blank value, a scrubbed value, a repeated name, a flag.
SENT_QUERY = "term=caf%C3%A9+au+lait&page=&token=%5BFiltered%5D&page=2&flag"


async def test_query_strings_show_as_a_table_of_decoded_parameters(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    def request(**fields: Any) -> dict[str, Any]:
        return message_event("search failed", request={"method": "GET", **fields})

    events = [
        request(url="https://shop.example/s", query_string="?" + SENT_QUERY),
        request(url="https://shop.example/s?term=tea&sort=price"),  # only in the URL
        request(query_string=[["term", "tea"], ["page", 3]]),  # Sentry's normalized form
        request(query_string={"term": "tea"}),
        request(query_string="[Filtered]"),  # scrubbed as a whole
    ]  # fmt: skip
    await send(session, collector, *events)

    async def query_rows(event: dict[str, Any]) -> list[tuple[str, str]]:
        body = await page(session, collector, f"/events/{event['event_id']}/")
        table = re.search(r'<table class="kv query">(.*?)</table>', body, re.S)
        assert table is not None, body
        return [
            (text_of(name), text_of(value))
            for name, value in re.findall(r"<th>(.*?)</th><td>(.*?)</td>", table.group(1))
        ]

    assert await query_rows(events[0]) == [
        ("term", "café au lait"),
        ("page", ""),
        ("token", "[Filtered]"),
        ("page", "2"),
        ("flag", ""),
    ]
    first = text_of(await page(session, collector, f"/events/{events[0]['event_id']}/"))
    assert f"as sent: ?{SENT_QUERY}" in first
    assert await query_rows(events[1]) == [("term", "tea"), ("sort", "price")]
    assert await query_rows(events[2]) == [("term", "tea"), ("page", "3")]
    assert await query_rows(events[3]) == [("term", "tea")]
    scrubbed = await page(session, collector, f"/events/{events[4]['event_id']}/")
    assert "<h3>Query string</h3><pre>[Filtered]</pre>" in scrubbed

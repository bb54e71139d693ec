"""Breadcrumbs of SQL statements and Redis commands, from the real clients against real servers:
SQLAlchemy on SQLite (sync and asyncio engines), asyncpg on PostgreSQL (a connection and a
pool), redis-py sync and asyncio on Redis. What is checked is what a server would receive: the
event's breadcrumbs, and the absence of secrets from every byte sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _services import Postgres, Redis, postgres_server, redis_server

import errlink
from errlink.integrations import _libraries
from tests._support.transports import MemoryTransport

asyncpg = pytest.importorskip("asyncpg")
sqlalchemy = pytest.importorskip("sqlalchemy")
redis = pytest.importorskip("redis")
redis_asyncio = pytest.importorskip("redis.asyncio")
sqlalchemy_asyncio = pytest.importorskip("sqlalchemy.ext.asyncio")

LIBRARIES = ["sqlalchemy", "asyncpg", "redis"]
OTHER_LIBRARIES = [name for name in _libraries.NAMES if name not in LIBRARIES]
PASSWORD = "hunter2-Very-Hidden"
CARD = "4111111111111111"
CARD_SPACED = "4111 1111 1111 1111"
REDIS_VALUE = "redis-value-never-sent"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server: Redis
    with redis_server() as server:
        yield server.url


class Reporter:
    """An `AsyncClient` current in the test, and what it sent."""

    def __init__(self, client: errlink.AsyncClient, transport: MemoryTransport) -> None:
        self.client = client
        self.transport = transport

    async def event(self, message: str = "after the queries") -> dict[str, Any]:
        """Capture an error now and return the event as sent."""
        try:
            raise RuntimeError(message)
        except RuntimeError as exc:
            await self.client.capture_exception(exc)
        return await self.sent()

    async def sent(self) -> dict[str, Any]:
        assert await self.client.flush(timeout=10)
        events = self.transport.events()
        assert len(events) == 1
        return events[0]

    def wire(self) -> str:
        """Every byte sent, as text (secrets must appear nowhere in it)."""
        return b"".join(envelope.to_bytes() for envelope in self.transport.envelopes).decode()


def crumbs(event: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        crumb
        for crumb in event.get("breadcrumbs", {}).get("values", [])
        if crumb.get("category") == kind
    ]


def messages(event: dict[str, Any], kind: str) -> list[str]:
    return [crumb["message"] for crumb in crumbs(event, kind)]


def only(event: dict[str, Any], kind: str, start: str) -> dict[str, Any]:
    found = [crumb for crumb in crumbs(event, kind) if crumb["message"].startswith(start)]
    assert len(found) == 1, [crumb["message"] for crumb in crumbs(event, kind)]
    return found[0]


@pytest.fixture
def hooked() -> Iterator[None]:
    _libraries.enable(LIBRARIES)
    yield
    _libraries.disable_all()


async def reporter(**options: Any) -> tuple[errlink.AsyncClient, MemoryTransport]:
    transport = MemoryTransport()
    options.setdefault("disabled_integrations", OTHER_LIBRARIES)
    client = errlink.AsyncClient(transport=transport, **options)
    return client, transport


@pytest.fixture
async def reporting(hooked: None) -> AsyncIterator[Reporter]:
    client, transport = await reporter()
    async with client:
        yield Reporter(client, transport)


@pytest.fixture
async def reporting_without_locals(hooked: None) -> AsyncIterator[Reporter]:
    """For events of a failed query: the driver's frames hold the query's values in their
    locals (see `test_failed_query_values_in_driver_frame_locals`)."""
    client, transport = await reporter(include_locals=False)
    async with client:
        yield Reporter(client, transport)


@pytest.fixture
async def reporting_pii(hooked: None) -> AsyncIterator[Reporter]:
    client, transport = await reporter(send_default_pii=True)
    async with client:
        yield Reporter(client, transport)


def assert_timed(crumb: dict[str, Any]) -> None:
    duration = crumb["data"]["duration_ms"]
    assert isinstance(duration, float | int)
    assert duration >= 0


# -- SQLAlchemy ---------------------------------------------------------------------------------


def _users(metadata: Any) -> Any:
    sa = sqlalchemy
    return sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("pin", sa.String),
        sa.Column("card", sa.String),
    )


async def test_sqlalchemy_sync_engine_records_statements_with_placeholders(
    reporting: Reporter,
) -> None:
    sa = sqlalchemy
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    users = _users(metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(users.insert().values(name="bob", pin=PASSWORD, card=CARD))
        connection.execute(
            users.insert(), [{"name": "amy", "pin": PASSWORD, "card": CARD_SPACED}] * 2
        )
        connection.execute(sa.select(users.c.id).where(users.c.pin == PASSWORD))
        connection.exec_driver_sql("SELECT id FROM users WHERE card = ?", (CARD,))
    engine.dispose()

    event = await reporting.event()
    insert = crumbs(event, "query")
    assert [crumb["message"] for crumb in insert if crumb["message"].startswith("INSERT")] == [
        "INSERT INTO users (name, pin, card) VALUES (?, ?, ?)"
    ] * 2
    single, many = [crumb for crumb in insert if crumb["message"].startswith("INSERT")]
    assert single["type"] == "query"
    assert single["level"] == "info"
    assert single["data"]["db.system"] == "sqlite"
    assert "executemany" not in single["data"]
    assert many["data"]["executemany"] is True
    assert "db.params" not in single["data"]  # values only with send_default_pii
    selected = only(event, "query", "SELECT users.id")
    assert selected["message"].endswith("WHERE users.pin = ?")
    assert only(event, "query", "SELECT id FROM users WHERE card = ?")
    for crumb in crumbs(event, "query"):
        assert_timed(crumb)
    wire = reporting.wire()
    for secret in (PASSWORD, CARD, CARD_SPACED):
        assert secret not in wire


async def test_sqlalchemy_failed_statement_is_an_error_crumb_before_the_capture(
    reporting_without_locals: Reporter,
) -> None:
    sa = sqlalchemy
    engine = sa.create_engine("sqlite://", hide_parameters=True)
    with engine.connect() as connection:
        try:
            connection.execute(
                sa.text("SELECT * FROM missing WHERE token = :token"), {"token": PASSWORD}
            )
        except sa.exc.OperationalError as exc:
            await reporting_without_locals.client.capture_exception(exc)
    engine.dispose()

    event = await reporting_without_locals.sent()
    failed = only(event, "query", "SELECT * FROM missing")
    assert failed["message"] == "SELECT * FROM missing WHERE token = ?"
    assert failed["level"] == "error"
    assert failed["data"]["reason"] == "OperationalError"
    assert_timed(failed)
    assert event["exception"]["values"][-1]["type"] == "OperationalError"
    assert PASSWORD not in reporting_without_locals.wire()


async def test_sqlalchemy_asyncio_engine(reporting_without_locals: Reporter) -> None:
    sa = sqlalchemy
    # SQLAlchemy puts the values in its exceptions' messages unless told not to.
    engine = sqlalchemy_asyncio.create_async_engine("sqlite+aiosqlite://", hide_parameters=True)
    metadata = sa.MetaData()
    users = _users(metadata)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.execute(users.insert().values(name="bob", pin=PASSWORD, card=CARD))
        rows = await connection.execute(sa.select(users.c.name).where(users.c.card == CARD))
        assert rows.scalars().all() == ["bob"]
        try:
            await connection.execute(sa.text("UPDATE missing SET pin = :pw"), {"pw": PASSWORD})
        except sa.exc.OperationalError:
            event = await reporting_without_locals.event("right after the failure")
    await engine.dispose()

    assert only(event, "query", "INSERT INTO users")["data"]["db.system"] == "sqlite"
    assert only(event, "query", "SELECT users.name")["message"].endswith("users.card = ?")
    failed = only(event, "query", "UPDATE missing")
    assert failed["message"] == "UPDATE missing SET pin = ?"
    assert failed["level"] == "error"
    for crumb in crumbs(event, "query"):
        assert_timed(crumb)
    wire = reporting_without_locals.wire()
    assert PASSWORD not in wire
    assert CARD not in wire


async def test_sqlalchemy_parameters_with_send_default_pii_are_filtered(
    reporting_pii: Reporter,
) -> None:
    sa = sqlalchemy
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    users = _users(metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(users.insert().values(name="bob", pin=PASSWORD, card=CARD))
        connection.exec_driver_sql(
            "SELECT id FROM users WHERE name = ? AND pin = ?", ("bob", PASSWORD)
        )
    engine.dispose()

    event = await reporting_pii.event()
    insert = only(event, "query", "INSERT INTO users")
    assert insert["data"]["db.params"] == {
        "name": "bob",
        "pin": "[Filtered]",
        "card": "[Filtered]",
    }
    raw = only(event, "query", "SELECT id FROM users WHERE name")
    assert raw["data"]["db.params"] == {"name": "bob", "pin": "[Filtered]"}
    wire = reporting_pii.wire()
    assert PASSWORD not in wire
    assert CARD not in wire


async def test_sqlalchemy_turned_off_and_no_client_record_nothing(hooked: None) -> None:
    sa = sqlalchemy
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 'outside any client'")  # no client: untouched
    client, transport = await reporter(disabled_integrations=["sqlalchemy", *OTHER_LIBRARIES])
    async with client:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 'integration off'")
        reporter_ = Reporter(client, transport)
        event = await reporter_.event()
    engine.dispose()
    assert crumbs(event, "query") == []
    assert "sqlalchemy" not in event["sdk"]["integrations"]


@pytest.mark.xfail(
    reason="frame locals are not scrubbed of SQL values: the driver's frames (SQLAlchemy's "
    "_exec_single_context, do_execute) hold the positional parameters the query failed with",
    strict=True,
)
async def test_failed_query_values_in_driver_frame_locals(reporting: Reporter) -> None:
    sa = sqlalchemy
    engine = sa.create_engine("sqlite://", hide_parameters=True)
    with engine.connect() as connection:
        try:
            connection.exec_driver_sql("SELECT * FROM missing WHERE x = ?", (PASSWORD,))
        except sa.exc.OperationalError as exc:
            await reporting.client.capture_exception(exc)
    engine.dispose()
    await reporting.sent()
    assert PASSWORD not in reporting.wire()


# -- asyncpg ------------------------------------------------------------------------------------


async def test_asyncpg_connection_records_queries(
    reporting_without_locals: Reporter, postgres: Postgres
) -> None:
    connection = await asyncpg.connect(postgres.dsn)
    try:
        await connection.execute(
            "CREATE TEMPORARY TABLE accounts (id serial PRIMARY KEY, name text, pin text)"
        )
        await connection.execute(
            "INSERT INTO accounts (name, pin) VALUES ($1, $2)", "bob", PASSWORD
        )
        await connection.executemany(
            "INSERT INTO accounts (name, pin) VALUES ($1, $2)",
            [("amy", CARD), ("cy", PASSWORD)],
        )
        assert await connection.fetchval("SELECT count(*) FROM accounts WHERE name <> $1", "x") == 3
        row = await connection.fetchrow("SELECT name FROM accounts WHERE pin = $1", PASSWORD)
        assert row["name"] == "bob"
        try:
            await connection.fetch("SELECT * FROM missing WHERE pin = $1", PASSWORD)
        except asyncpg.exceptions.UndefinedTableError:
            event = await reporting_without_locals.event("right after the failure")
    finally:
        await connection.close()

    assert messages(event, "query") == [
        "CREATE TEMPORARY TABLE accounts (id serial PRIMARY KEY, name text, pin text)",
        "INSERT INTO accounts (name, pin) VALUES ($1, $2)",
        "INSERT INTO accounts (name, pin) VALUES ($1, $2)",
        "SELECT count(*) FROM accounts WHERE name <> $1",
        "SELECT name FROM accounts WHERE pin = $1",
        "SELECT * FROM missing WHERE pin = $1",
    ]
    queries = crumbs(event, "query")
    assert queries[2]["data"]["executemany"] is True
    assert all(crumb["data"]["db.system"] == "postgresql" for crumb in queries)
    assert all(crumb["level"] == "info" for crumb in queries[:-1])
    assert queries[-1]["level"] == "error"
    assert queries[-1]["data"]["reason"] == "UndefinedTableError"
    for crumb in queries:
        assert_timed(crumb)
        assert "db.params" not in crumb["data"]
    wire = reporting_without_locals.wire()
    assert PASSWORD not in wire
    assert CARD not in wire


async def test_asyncpg_pool_connections_are_recorded_without_resets(
    reporting: Reporter, postgres: Postgres
) -> None:
    pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT $1::text", PASSWORD) == PASSWORD
        assert await pool.fetchval("SELECT 40 + $1::int", 2) == 42
        async with pool.acquire() as connection:
            await connection.execute("SELECT 1")
    finally:
        await pool.close()

    event = await reporting.event()
    assert messages(event, "query") == ["SELECT $1::text", "SELECT 40 + $1::int", "SELECT 1"]
    assert PASSWORD not in reporting.wire()


async def test_asyncpg_parameters_with_send_default_pii_are_named_and_filtered(
    reporting_pii: Reporter, postgres: Postgres
) -> None:
    connection = await asyncpg.connect(postgres.dsn)
    try:
        await connection.execute("CREATE TEMPORARY TABLE people (name text, pin text, n int)")
        await connection.execute(
            "INSERT INTO people (name, pin, n) VALUES ($1, $2, $3)", "bob", PASSWORD, 7
        )
        await connection.fetch("SELECT name FROM people WHERE n > $2 AND name = $1", CARD_SPACED, 1)
    finally:
        await connection.close()

    event = await reporting_pii.event()
    insert = only(event, "query", "INSERT INTO people")
    assert insert["data"]["db.params"] == {"name": "bob", "pin": "[Filtered]", "n": 7}
    select = only(event, "query", "SELECT name FROM people")
    assert select["data"]["db.params"] == {"name": "[Filtered]", "n": 1}
    wire = reporting_pii.wire()
    assert PASSWORD not in wire
    assert CARD_SPACED not in wire


# -- Redis --------------------------------------------------------------------------------------


async def test_redis_sync_records_command_and_key_never_values(
    reporting_pii: Reporter, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("user:1", REDIS_VALUE)
        assert client.get("user:1") == REDIS_VALUE.encode()
        client.hset("session:abc", mapping={"pin": PASSWORD})
        with pytest.raises(redis.exceptions.AuthenticationError):
            client.execute_command("AUTH", PASSWORD)  # the server has no password set
        with pytest.raises(redis.exceptions.ResponseError):
            client.incr("user:1")  # not an integer
        pipeline = client.pipeline()
        pipeline.set("user:2", REDIS_VALUE).incr("hits").expire("user:2", 60)
        assert pipeline.execute()[0] is True
    finally:
        client.close()

    event = await reporting_pii.event()
    assert messages(event, "redis") == [
        "SET user:1",
        "GET user:1",
        "HSET session:abc",
        "[Filtered]",  # "AUTH" names a secret, as Relay's default scrubbing reads it
        "INCRBY user:1",
        "SET user:2; INCRBY hits; EXPIRE user:2",
    ]
    commands = crumbs(event, "redis")
    assert commands[0]["type"] == "redis"
    assert commands[0]["data"]["db.operation"] == "SET"
    assert commands[0]["data"]["redis.key"] == "user:1"
    assert "redis.key" not in commands[3]["data"]
    assert [crumb["level"] for crumb in commands] == ["info"] * 3 + ["error"] * 2 + ["info"]
    assert commands[4]["data"]["reason"] == "ResponseError"
    pipeline_crumb = commands[5]
    assert pipeline_crumb["data"]["db.operation"] == "PIPELINE"
    assert pipeline_crumb["data"]["redis.commands"] == 3
    assert pipeline_crumb["data"]["redis.transaction"] is True
    for crumb in commands:
        assert_timed(crumb)
    wire = reporting_pii.wire()
    assert REDIS_VALUE not in wire
    assert PASSWORD not in wire


async def test_redis_asyncio_records_commands_and_pipelines(
    reporting_without_locals: Reporter, redis_url: str
) -> None:
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        await client.set("cart:9", REDIS_VALUE)
        await client.lpush("queue", REDIS_VALUE, CARD)
        async with client.pipeline(transaction=False) as pipeline:
            pipeline.get("cart:9").delete("cart:9")
            assert await pipeline.execute() == [REDIS_VALUE.encode(), 1]
        try:
            await client.incr("queue")  # a list: WRONGTYPE
        except redis.exceptions.ResponseError:
            event = await reporting_without_locals.event("right after the failure")
    finally:
        await client.aclose()

    assert messages(event, "redis") == [
        "SET cart:9",
        "LPUSH queue",
        "GET cart:9; DEL cart:9",
        "INCRBY queue",
    ]
    commands = crumbs(event, "redis")
    assert commands[2]["data"]["redis.transaction"] is False
    assert commands[3]["level"] == "error"
    for crumb in commands:
        assert_timed(crumb)
    wire = reporting_without_locals.wire()
    assert REDIS_VALUE not in wire
    assert CARD not in wire


async def test_unhooked_clients_leave_no_breadcrumbs(redis_url: str) -> None:
    """After `disable_all()`, the libraries run untouched."""
    _libraries.enable(LIBRARIES)
    _libraries.disable_all()
    client, transport = await reporter(disabled_integrations=_libraries.NAMES)
    async with client:
        connection = redis.Redis.from_url(redis_url)
        try:
            connection.set("k", "v")
        finally:
            connection.close()
        event = await Reporter(client, transport).event()
    assert crumbs(event, "redis") == []
    assert json.dumps(event).count("SET k") == 0


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        ("INSERT INTO t (a, pin) VALUES ($1, $2), ($3, $4)", ("a", "pin") * 2),
        ('INSERT INTO "t" ("a", b) VALUES (?, ?)', ("a", "b")),
        ("SELECT * FROM t WHERE a = ? AND b LIKE ? AND d = 'x = ?' AND e>=%s", ("a", "b", "e")),
        ("SELECT * FROM t WHERE id IN ($2) AND n > $1", ("n", "id")),
        ("UPDATE t SET secret = crypt($1, 'bf') WHERE id = $2", (None, "id")),
    ],
)
def test_positional_values_are_named_after_their_columns(
    statement: str, names: tuple[str | None, ...]
) -> None:
    from errlink.integrations._libraries._queries import _positional_names

    assert _positional_names(statement, len(names)) == names

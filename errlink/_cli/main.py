"""The `errlink` command line.

Each subcommand is a `Subcommand` in `SUBCOMMANDS`: a function that declares its options and
a function that runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .._version import __version__
from . import values

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser, subparsers = _build_parsers()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Named by the subcommand's parser, so its usage is shown, not the top-level one.
        subparsers.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return SUBCOMMANDS[args.command].run(args)
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be installed
        return EXIT_OK


def _build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `errlink` parser, and each subcommand's parser by name."""
    parser = argparse.ArgumentParser(
        prog="errlink", description="errlink: an asyncio-first error-reporting client."
    )
    parser.add_argument("--version", action="version", version=f"errlink {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    by_name = {}
    for name, subcommand in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(subparser)
        by_name[name] = subparser
    return parser, by_name


def _error(command: str, message: str) -> None:
    print(f"errlink {command}: error: {message}", file=sys.stderr)


def _cannot_listen(command: str, host: str, port: int, exc: OSError) -> None:
    """One line for a collector that cannot start listening, with what to try instead."""
    message = f"cannot listen on {host}:{port}: {_os_error_text(exc)}"
    if exc.errno == errno.EADDRINUSE or "in use" in str(exc):
        message += " (another program uses this port; --port 0 picks any free port)"
    _error(command, message)


def _os_error_text(exc: OSError) -> str:
    if exc.errno and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    text = exc.strerror or str(exc)
    # asyncio's bind error reads "error while attempting to bind on address (...): <reason>".
    return text.rpartition("): ")[2] or text


# -- errlink serve ---------------------------------------------------------------------------

DEFAULT_SERVE_PORT = 8000
DEFAULT_SERVE_DB = "errlink-events.db"
DEFAULT_MAX_EVENTS = 10_000


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    from ..collector import DEFAULT_HOST, DEFAULT_PROJECT_ID

    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=values.port,
        default=DEFAULT_SERVE_PORT,
        help="port to listen on, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--db", default=DEFAULT_SERVE_DB, help="SQLite database file (default: %(default)s)"
    )
    parser.add_argument(
        "--key",
        default=None,
        help="public key clients must present (default: a new random key each start, "
        "shown in the DSN printed)",
    )
    parser.add_argument(
        "--project",
        type=values.project_id,
        default=DEFAULT_PROJECT_ID,
        help="project id to accept, a number (default: %(default)s)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this Host name (repeatable; '*' for any); by default "
        "only names of the listening address are answered, against DNS rebinding",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="take events sent by web pages of this origin, e.g. http://localhost:3000 "
        "(repeatable; '*' for any); by default ingestion from a browser is refused",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="do not log each event received (refusals are)"
    )
    parser.add_argument(
        "--max-events",
        type=values.non_negative_int,
        default=DEFAULT_MAX_EVENTS,
        metavar="N",
        help="keep only the newest N events, 0 to keep all; issues keep their counts "
        "(default: %(default)s)",
    )
    faults = parser.add_argument_group(
        "faults on purpose", "make ingestion misbehave, to watch a client retry and back off"
    )
    faults.add_argument(
        "--fail-rate",
        type=values.fraction,
        default=0.0,
        metavar="RATE",
        help="refuse this share of ingestion requests, 0 to 1 (default: %(default)s)",
    )
    faults.add_argument(
        "--status",
        type=values.error_status,
        default=500,
        metavar="STATUS",
        help="status to refuse them with: 500, 429 or 503 (any 4xx/5xx); 429 and 503 carry "
        "Retry-After (default: %(default)s)",
    )
    faults.add_argument(
        "--delay",
        type=values.non_negative_float,
        default=0.0,
        metavar="MS",
        help="delay every ingestion answer by MS milliseconds (default: %(default)s)",
    )
    faults.add_argument(
        "--retry-after",
        type=values.non_negative_float,
        default=1.0,
        metavar="SECONDS",
        help="Retry-After sent with a 429 or 503 (default: %(default)s)",
    )


def _run_serve(args: argparse.Namespace) -> int:
    from ..collector import Collector, StoreError
    from ..collector._serve import serve_until_signalled

    try:
        collector = Collector(
            host=args.host,
            port=args.port,
            db_path=args.db,
            public_key=args.key,
            project_id=args.project,
            allowed_hosts=args.allowed_host,
            allowed_origins=args.allow_origin,
            max_events=args.max_events or None,
            fail_rate=args.fail_rate,
            fail_status=args.status,
            delay_ms=args.delay,
            retry_after=args.retry_after,
        )
    except ValueError as exc:
        _error("serve", str(exc))
        return EXIT_USAGE
    # Refusals (a wrong Host, a browser page, the connection limit) are warnings, shown even
    # with -q; each stored event is shown unless -q.
    with _collector_log_shown(logging.WARNING if args.quiet else logging.INFO):
        try:
            asyncio.run(serve_until_signalled(collector, sys.stdout))
        except OSError as exc:
            _cannot_listen("serve", args.host, args.port, exc)
            return EXIT_FAILURE
        except StoreError as exc:
            _error("serve", str(exc))
            return EXIT_FAILURE
    return EXIT_OK


@contextlib.contextmanager
def _collector_log_shown(level: int) -> Iterator[None]:
    """The collector's log on stderr while serving (and no longer, when `main` is called)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    collector_logger = logging.getLogger("errlink.collector")
    saved_level = collector_logger.level
    collector_logger.addHandler(handler)
    collector_logger.setLevel(level)
    try:
        yield
    finally:
        collector_logger.removeHandler(handler)
        collector_logger.setLevel(saved_level)


# -- errlink test ----------------------------------------------------------------------------


def _add_test_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dsn",
        nargs="?",
        help="DSN to send to (default: $ERRLINK_DSN, then $SENTRY_DSN)",
    )
    parser.add_argument(
        "--timeout",
        type=values.positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait for the server's answer (default: %(default)s)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show errlink's own log of the send (debug=True)"
    )


def _run_test(args: argparse.Namespace) -> int:
    from .selftest import run_selftest

    dsn = args.dsn or os.environ.get("ERRLINK_DSN") or os.environ.get("SENTRY_DSN")
    if not dsn:
        _error("test", "no DSN given (pass one, or set ERRLINK_DSN)")
        return EXIT_USAGE
    return run_selftest(dsn, timeout=args.timeout, out=sys.stdout, err=sys.stderr, debug=args.debug)


# -- errlink demo ----------------------------------------------------------------------------


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the collector and its web UI running after the demo, until Ctrl-C",
    )
    parser.add_argument(
        "--port",
        type=values.port,
        default=0,
        help="port for the demo's collector (default: any free port)",
    )


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        return asyncio.run(run_demo(serve=args.serve, port=args.port))
    except OSError as exc:
        _cannot_listen("demo", "127.0.0.1", args.port, exc)
        return EXIT_FAILURE


SUBCOMMANDS: dict[str, Subcommand] = {
    "serve": Subcommand(
        help="run a local Sentry-compatible collector that stores events in SQLite",
        add_arguments=_add_serve_arguments,
        run=_run_serve,
    ),
    "test": Subcommand(
        help="send a test event to a DSN; exit 0 only if the server accepted it",
        add_arguments=_add_test_arguments,
        run=_run_test,
    ),
    "demo": Subcommand(
        help="start a local collector, report sample errors to it, and show what arrived",
        add_arguments=_add_demo_arguments,
        run=_run_demo,
    ),
}

"""The `errlink` command line.

Each subcommand is a `Subcommand` in `SUBCOMMANDS`: a function that declares its options and
a function that runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._version import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return SUBCOMMANDS[args.command].run(args)
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be installed
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errlink", description="errlink: an asyncio-first error-reporting client."
    )
    parser.add_argument("--version", action="version", version=f"errlink {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, subcommand in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(subparser)
    return parser


def _error(command: str, message: str) -> None:
    print(f"errlink {command}: error: {message}", file=sys.stderr)


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
        type=_port,
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
        "--project", default=DEFAULT_PROJECT_ID, help="project id to accept (default: %(default)s)"
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
        type=_non_negative_int,
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
        type=_fraction,
        default=0.0,
        metavar="RATE",
        help="refuse this share of ingestion requests, 0 to 1 (default: %(default)s)",
    )
    faults.add_argument(
        "--status",
        type=_error_status,
        default=500,
        metavar="STATUS",
        help="status to refuse them with: 500, 429 or 503 (any 4xx/5xx); 429 and 503 carry "
        "Retry-After (default: %(default)s)",
    )
    faults.add_argument(
        "--delay",
        type=_non_negative_float,
        default=0.0,
        metavar="MS",
        help="delay every ingestion answer by MS milliseconds (default: %(default)s)",
    )
    faults.add_argument(
        "--retry-after",
        type=_non_negative_float,
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
    _log_collector(logging.WARNING if args.quiet else logging.INFO)
    try:
        asyncio.run(serve_until_signalled(collector, sys.stdout))
    except OSError as exc:
        _error("serve", f"cannot start on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_FAILURE
    except StoreError as exc:
        _error("serve", str(exc))
        return EXIT_FAILURE
    return EXIT_OK


def _int_option(text: str, *, what: str, low: int, high: int | None, allowed: str) -> int:
    """An integer option in [low, high]; argparse shows the message as a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{allowed}, got {value}")
    return value


def _port(text: str) -> int:
    return _int_option(
        text, what="a port number", low=0, high=65535, allowed="port must be between 0 and 65535"
    )


def _non_negative_int(text: str) -> int:
    return _int_option(text, what="a whole number", low=0, high=None, allowed="must be 0 or more")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _error_status(text: str) -> int:
    return _int_option(
        text,
        what="an HTTP status",
        low=400,
        high=599,
        allowed="must be an error status (400-599)",
    )


def _log_collector(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    collector_logger = logging.getLogger("errlink.collector")
    collector_logger.addHandler(handler)
    collector_logger.setLevel(level)


# -- errlink test ----------------------------------------------------------------------------


def _add_test_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dsn",
        nargs="?",
        help="DSN to send to (default: $ERRLINK_DSN, then $SENTRY_DSN)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait (default: %(default)s)"
    )


def _run_test(args: argparse.Namespace) -> int:
    import os

    from .selftest import run_selftest

    dsn = args.dsn or os.environ.get("ERRLINK_DSN") or os.environ.get("SENTRY_DSN")
    if not dsn:
        _error("test", "no DSN given (pass one, or set ERRLINK_DSN)")
        return EXIT_USAGE
    return run_selftest(dsn, timeout=args.timeout, out=sys.stdout, err=sys.stderr)


# -- errlink demo ----------------------------------------------------------------------------


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the collector and its web UI running after the demo, until Ctrl-C",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        help="port for the demo's collector (default: any free port)",
    )


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        return asyncio.run(run_demo(serve=args.serve, port=args.port))
    except OSError as exc:
        _error("demo", f"cannot start the collector on port {args.port}: {exc.strerror or exc}")
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

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

from ._version import __version__

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


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    from .collector import DEFAULT_HOST, DEFAULT_PROJECT_ID, DEFAULT_PUBLIC_KEY

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
        default=DEFAULT_PUBLIC_KEY,
        help="public key clients must present (default: %(default)s)",
    )
    parser.add_argument(
        "--project", default=DEFAULT_PROJECT_ID, help="project id to accept (default: %(default)s)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not log each event received")


def _run_serve(args: argparse.Namespace) -> int:
    from .collector import Collector, StoreError
    from .collector._serve import serve_until_signalled

    try:
        collector = Collector(
            host=args.host,
            port=args.port,
            db_path=args.db,
            public_key=args.key,
            project_id=args.project,
        )
    except ValueError as exc:
        _error("serve", str(exc))
        return EXIT_USAGE
    if not args.quiet:
        _log_received_events()
    try:
        asyncio.run(serve_until_signalled(collector, sys.stdout))
    except OSError as exc:
        _error("serve", f"cannot start on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_FAILURE
    except StoreError as exc:
        _error("serve", str(exc))
        return EXIT_FAILURE
    return EXIT_OK


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def _log_received_events() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    collector_logger = logging.getLogger("errlink.collector")
    collector_logger.addHandler(handler)
    collector_logger.setLevel(logging.INFO)


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

    from ._selftest import run_selftest

    dsn = args.dsn or os.environ.get("ERRLINK_DSN") or os.environ.get("SENTRY_DSN")
    if not dsn:
        _error("test", "no DSN given (pass one, or set ERRLINK_DSN)")
        return EXIT_USAGE
    return run_selftest(dsn, timeout=args.timeout, out=sys.stdout, err=sys.stderr)


# -- errlink demo ----------------------------------------------------------------------------


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serve", action="store_true", help="keep the collector running after the demo"
    )


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return asyncio.run(run_demo(serve=args.serve))


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

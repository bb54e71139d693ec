"""`manage.py errlink_boom`: crashes (or, with --command-error, fails the way commands should)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Crash, for errlink's tests."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--command-error", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["command_error"]:
            raise CommandError("bad input, reported to the user only")
        ledger = {"balance": -5}
        raise ArithmeticError(f"ledger out of balance: {ledger['balance']}")

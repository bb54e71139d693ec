"""Naming the management command a process runs, for the events it reports.

A command that crashes (an uncaught exception, not a `CommandError`) ends the process through
`sys.excepthook`, which `errlink.init` hooks; the tag set here tells which command it was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .._sdk import set_tag

_LAUNCHERS = frozenset({"manage.py", "django-admin", "django-admin.py"})


def command_from_argv(argv: Sequence[str]) -> str | None:
    """The subcommand in ``manage.py CMD``, ``django-admin CMD`` or ``python -m django CMD``."""
    if len(argv) < 2:
        return None
    launcher = argv[0]
    base = os.path.basename(launcher)
    from_django_main = (
        base == "__main__.py" and os.path.basename(os.path.dirname(launcher)) == "django"
    )
    if base not in _LAUNCHERS and not from_django_main:
        return None
    command = argv[1]
    return command if command and not command.startswith("-") else None


def tag_command(argv: Sequence[str]) -> None:
    # Set in the context that runs the command (the main thread, where `django.setup()` runs);
    # requests served by `runserver` get scopes of their own.
    command = command_from_argv(argv)
    if command is not None:
        set_tag("django.command", command)

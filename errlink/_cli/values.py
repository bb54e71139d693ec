"""Option values of the `errlink` command: argparse `type=` functions whose errors argparse
shows as a usage error naming the flag (`argument --timeout: must be more than 0, got 0`)."""

from __future__ import annotations

import argparse
import re


def int_option(text: str, *, what: str, low: int, high: int | None, allowed: str) -> int:
    """An integer option in [low, high]; argparse shows the message as a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{allowed}, got {value}")
    return value


def port(text: str) -> int:
    return int_option(
        text, what="a port number", low=0, high=65535, allowed="port must be between 0 and 65535"
    )


def non_negative_int(text: str) -> int:
    return int_option(text, what="a whole number", low=0, high=None, allowed="must be 0 or more")


def project_id(text: str) -> str:
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError(f"a project id is a number, not {text!r}")
    return text


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def error_status(text: str) -> int:
    return int_option(
        text,
        what="an HTTP status",
        low=400,
        high=599,
        allowed="must be an error status (400-599)",
    )

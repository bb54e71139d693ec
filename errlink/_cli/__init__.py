"""The `errlink` command: serve, demo and test."""

from .main import main

__all__ = ["main"]

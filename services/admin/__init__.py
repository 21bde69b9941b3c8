"""Operator commands: look at posts and dead letters, and act on them."""

from ._cli import register
from ._table import format_table

__all__ = ["format_table", "register"]

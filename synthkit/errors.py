"""The errors synthkit raises to its users (the public names; they live in synthkit.core.errors)."""

from synthkit.core.errors import UserError

__all__ = ["UserError"]

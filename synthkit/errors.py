"""The errors synthkit raises to its users (the public names; they live in synthkit.core.errors)."""

from synthkit.core.errors import RunStoppedEarly, UserError

__all__ = ["RunStoppedEarly", "UserError"]

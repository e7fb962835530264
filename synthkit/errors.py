class UserError(Exception):
    """A mistake the user can fix: reported as one line, never as a traceback."""

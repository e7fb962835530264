class UserError(Exception):
    """A mistake the user can fix, or a refusal: reported as one line, never as a traceback. Its message may
    echo a provider's answer and ends up on screens, in logs and in the status file: it is made printable (keys
    redacted, one line, control characters escaped, cut to a bound)."""

    def __init__(self, message: str = ""):
        from synthkit.core.text import MESSAGE_CHARS, printable

        super().__init__(printable(message, MESSAGE_CHARS))


class RunStoppedEarly(UserError):
    """The run ended before all its rows were made (rows written are kept): `.run` is what it made."""

    def __init__(self, message: str, run):
        super().__init__(message)
        self.run = run

class UserError(Exception):
    """A mistake the user can fix, or a refusal: reported as one line, never as a traceback. Its message has
    keys redacted, as it may echo a provider's answer and ends up on screens and in logs."""

    def __init__(self, message: str = ""):
        from synthkit.core.secrets import redact

        super().__init__(redact(str(message)))


class RunStoppedEarly(UserError):
    """The run ended before all its rows were made (rows written are kept): `.run` is what it made."""

    def __init__(self, message: str, run):
        super().__init__(message)
        self.run = run

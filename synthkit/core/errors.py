class UserError(Exception):
    """A mistake the user can fix, or a refusal: reported as one line, never as a traceback. Its message has
    keys redacted, as it may echo a provider's answer and ends up on screens and in logs."""

    def __init__(self, message: str = ""):
        from synthkit.core.secrets import redact

        super().__init__(redact(str(message)))

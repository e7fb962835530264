"""The optional extras of the distribution, named in install lines of error messages."""

# The name on PyPI: plain `synthkit` there is an unrelated project, so install lines must name this one.
DISTRIBUTION = "synthkit-embed"


def pip_install(extra: str) -> str:
    """The install line for an optional extra, for messages."""
    return f"pip install '{DISTRIBUTION}[{extra}]' (from a checkout: pip install '.[{extra}]')"

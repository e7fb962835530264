"""Text that comes from outside synthkit (a provider's error, a batch's status, a server's reason, an exception's
message) as it may be stored or printed: keys redacted, on one line with its control characters escaped (an
escape sequence must not drive the user's terminal), and cut to a bound (a 5 MB error must not become a 5 MB
journal line, status file and stderr). Every writer and printer of such text goes through `printable`."""

import re

from synthkit.core.secrets import redact

REASON_CHARS = 300  # a provider's reason kept with a row, a batch, a request
MESSAGE_CHARS = 2000  # a one-line error or stop reason, which may quote a reason
_SCANNED = 1 << 16  # only so much is read of a huge text: what is kept is far shorter
# C0 and C1 controls (ESC among them), DEL, and the bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text, limit: int = REASON_CHARS) -> str:
    """`text` (anything: it is made a string) redacted, on one line, controls escaped, at most about `limit`
    characters (a cut says how much was left out)."""
    text = str(text)
    whole = len(text)
    # Redacted before it is cut: a key cut in two would no longer be recognised.
    text = redact(text[:_SCANNED])
    text = _CONTROL.sub(_escape, " ".join(text.split()))
    if len(text) > limit or whole > _SCANNED:
        text = f"{text[:limit].rstrip()} ... [{whole:,} characters, cut]"
    return text


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

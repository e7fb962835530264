"""Fences for text a prompt shows as data (a row, a corpus chunk, a query) to a model asked to judge it: a tag that
the text cannot close. A fixed delimiter (`<<<` ... `>>>`) is closed by any text that holds `>>>`, after which the
text's own "Rubric:" lines read as the prompt's. The tag here is drawn from a hash of the fenced texts themselves,
so it is the same for the same prompt (the response cache still finds it) and no text can hold its own fence: it
would have to contain a hash of itself. A tag that occurs in a text anyway is drawn again."""

import hashlib
import itertools

TAG_HEX = 12  # 48 bits: no text guesses it by chance


class Fence:
    def __init__(self, *texts: str):
        self.tag = _tag(texts)
        self.open, self.close = f"<{self.tag}>", f"</{self.tag}>"

    def wrap(self, text: str) -> str:
        return f"{self.open}\n{text}\n{self.close}"


def _tag(texts: tuple) -> str:
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass"))
    for salt in itertools.count():
        digest.update(str(salt).encode())
        tag = "data-" + digest.hexdigest()[:TAG_HEX]
        if not any(tag in text for text in texts):
            return tag

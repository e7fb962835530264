"""Checks for answers that are not answers: schema-valid JSON whose fields echo the question instead of answering
it. A weak model fills `S1` with "S1", `label` with "Label", `input_text` with "a sentence to classify", a
`passage` with one word. Four kinds, declared per task in its YAML like every check (synthkit/spec/checks.py):

    - {check: echo, fields: [S1, S2]}            # an output key, an attribute's name or value, the instructions
    - {check: placeholder, fields: [S1], allow: [number]}   # "...", "N/A", "string", lorem ipsum, a lone letter
    - {check: length, fields: [S1], unit: unit}  # a `unit` (sentence, phrase, passage) or `words` attribute's bounds
    - {check: label, fields: [label]}            # a meta-word ("label", "category", "positive label"...)

Each test is a pure function of the answer, the drawn attributes and the task's context (output keys, attribute
names, the prompt's template text); lists of strings (brainstorm) are checked item by item. They err towards
letting an answer through: a rejected good row costs a re-ask, but the rules only fire on text that cannot be a
real answer in any language (an echo is made only of the English prompt's own words)."""

import functools
import re
from dataclasses import dataclass
from typing import Optional

from synthkit.spec.text import tokens, word_count

KINDS_DEGENERATE = ("echo", "placeholder", "length", "label")

# Bounds in words (synthkit.spec.text.word_count: per script) of what a `unit` attribute asks for. Loose on
# purpose: they reject a "sentence" of one token or a "passage" of one word, not a short real sentence.
UNIT_WORDS = {
    "phrase": (1, 40),
    "sentence": (2, 150),
    "passage": (8, None),
    "paragraph": (8, None),
    "document": (8, None),
}
# A length asked in words ("less than 5 words", "5 to 15 words", "at least 10 words", 50) is kept within these
# factors: half the least asked, twice (plus slack for short asks) the most.
TOO_SHORT, TOO_LONG, SLACK = 0.5, 2.0, 4

# Whole-field placeholders, compared after _normalise (lower case, no punctuation at the ends).
PLACEHOLDERS = frozenset(
    """n/a na n.a none null nil undefined string str text value todo tbd placeholder example sample xxx xx x y z
    foo bar baz foobar answer output input response content blank empty unknown""".split()
    + ["your text here", "insert text here", "text here", "your answer", "your answer here", "example text"]
)
# Placeholders that can be a real label ("none" of a toxicity task), so not a placeholder in a label field.
LABEL_WORDS = frozenset({"none", "unknown", "empty", "blank", "x", "y", "z"})
_LOREM = re.compile(r"\blorem ipsum\b|\bdolor sit amet\b", re.IGNORECASE)
_BRACKETED = re.compile(r"^\s*(<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\})\s*$")  # "<text>", "[label]", "{S1}"
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_LONE = re.compile(r"^\s*(?:[^\W\d_]|\d+(?:[.,]\d+)?)\s*[.)]?\s*$")  # "a", "B.", "3", "1.5"

# Words that name a label rather than being one: "label", "Category", "positive label", "misleading_label",
# "Label 1", "the correct class".
_META_HEAD = r"(?:label|labels|category|categories|class|classes|tag|class label|category name|label name)"
_META_LABEL = re.compile(
    r"^(?:the |a |an )?(?:(?:correct|true|right|wrong|false|incorrect|misleading|positive|negative|other|"
    r"second|first|alternative|valid|invalid|predicted|target|gold|output) )*" + _META_HEAD + r"(?: ?(?:\d+|[a-z]))?$"
)

# Echoes of the instructions: a field made only of the template's own words (with the output keys, the attribute
# names and the drawn values) is a restatement of the question. Only short fields of at least ECHO_LEAST words are
# judged: one or two words of the prompt ("positive", "high school") can be real answers.
ECHO_LEAST, ECHO_MOST = 3, 15
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@dataclass(frozen=True)
class TaskContext:
    """What a task asks with: its output keys, its attribute names and its prompt template."""

    output_keys: tuple
    attributes: tuple
    prompt: str = ""

    def instruction_words(self) -> frozenset:
        return _instruction_words(self.prompt, self.output_keys + self.attributes)


@functools.lru_cache(maxsize=64)  # once per task, not per answer: it is most of an echo check's time
def _instruction_words(prompt: str, names: tuple) -> frozenset:
    static = _JINJA.sub(" ", prompt)
    joined = " ".join(names)
    return frozenset(tokens(static) + tokens(joined.replace("_", " ")) + tokens(joined))


_JOINERS = re.compile(r"[_\-]+")
_ENDS = re.compile(r"^[\W_]+|[\W_]+$")


def _normalise(text: str) -> str:
    """Lower case, words joined by single spaces, `_` and `-` as spaces, no punctuation at the ends."""
    text = _JOINERS.sub(" ", text.strip().lower())
    text = _ENDS.sub("", text) or text.strip()
    return " ".join(text.split())


@functools.lru_cache(maxsize=256)
def _normalised(names: tuple) -> dict:
    return {_normalise(name): name for name in names}


def _texts(value) -> list:
    """The strings of a field: itself, or the items of a list of strings (brainstorm)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _where(field: str, value, text: str) -> str:
    return field if isinstance(value, str) else f"an item of {field} ({text[:60]!r})"


# Pure tests: the reason the text is degenerate, or None.


def echo_reason(text: str, context: TaskContext, attributes: dict, label: bool = False) -> Optional[str]:
    """`text` repeats an output key, an attribute's name or (long enough) value, or is made of the instructions."""
    said = _normalise(text)
    if not said:
        return None
    keys = _normalised(context.output_keys)
    if said in keys:
        return f"it is the output key name {keys[said]!r}, not a value"
    if all(word in keys for word in said.split()):
        return "it is made of output key names, not a value"
    names = _normalised(context.attributes)
    if said in names:
        return f"it is the attribute name {names[said]!r}, not a value"
    for name, value in attributes.items():
        value = _normalise(str(value))
        # A label may be a short drawn value ("English" for a language-identification task); not the definition.
        if said == value and (not label or len(value.split()) >= 3):
            return f"it repeats the {name} the prompt gave ({value!r})"
    words = tokens(text)
    if ECHO_LEAST <= len(words) <= ECHO_MOST:
        # A chunk of the user's corpus (task=grounded_retrieval) is what to write about, not instructions: a
        # keyword query made of its words is an answer.
        drawn = [v for v in attributes.values() if getattr(v, "chunk", None) is None]
        vocabulary = context.instruction_words() | {w for v in drawn for w in tokens(str(v))}
        if all(w in vocabulary for w in words):
            return "it restates the instructions instead of following them"
    return None


def placeholder_reason(text: str, allow: tuple = (), label: bool = False) -> Optional[str]:
    """`text` is a placeholder: "...", "N/A", "string", lorem ipsum, "<text>", a lone letter or number."""
    said = _normalise(text)
    if not _LETTER_OR_DIGIT.search(text):
        return f"it is a placeholder ({text.strip()[:20]!r}), with no letter or digit"
    if said in PLACEHOLDERS and not (label and said in LABEL_WORDS):
        return f"it is a placeholder ({text.strip()!r})"
    if _LOREM.search(text):
        return "it is lorem ipsum placeholder text"
    if _BRACKETED.match(text) and len(text) <= 40:
        return f"it is a template slot ({text.strip()!r}), not text"
    if _LONE.match(text) and not label:
        lone = "number" if text.strip()[0].isdigit() else "letter"
        if lone not in allow:
            return f"it is a lone {lone} ({text.strip()!r})"
    return None


def meta_label_reason(text: str) -> Optional[str]:
    """`text` names a label instead of being one."""
    said = _normalise(text)
    if _META_LABEL.match(said):
        return f"{text.strip()!r} names a label instead of being one; give the label itself"
    return None


def word_bounds(asked) -> tuple:
    """(least, most) words for what an attribute asked: a unit name, a number of words or a phrase of them."""
    if asked is None:
        return None, None
    if isinstance(asked, (int, float)) and not isinstance(asked, bool):
        return int(asked * TOO_SHORT), None
    asked = str(asked).strip().lower()
    if asked in UNIT_WORDS:
        return UNIT_WORDS[asked]
    numbers = [int(n) for n in re.findall(r"\d+", asked)]
    if not numbers:
        return None, None
    if asked.startswith(("less than", "fewer than", "at most", "up to", "under")):
        return None, int(numbers[0] * TOO_LONG) + SLACK
    if asked.startswith(("at least", "more than", "over")):
        return max(1, int(numbers[0] * TOO_SHORT)), None
    if len(numbers) >= 2:  # "5 to 15 words"
        return max(1, int(numbers[0] * TOO_SHORT)), int(numbers[1] * TOO_LONG) + SLACK
    return max(1, int(numbers[0] * TOO_SHORT)), int(numbers[0] * TOO_LONG) + SLACK


def length_reason(text: str, least: Optional[int], most: Optional[int], asked: str) -> Optional[str]:
    """`text` is far shorter or longer than `asked` (words counted per script)."""
    have = word_count(text)
    if least is not None and have < least:
        return f"it has {have} word{'s' * (have != 1)}, too few for {asked} (at least {least})"
    if most is not None and have > most:
        return f"it has {have} words, too many for {asked} (at most {most})"
    return None


# Check factories (synthkit.spec.checks.KINDS): each takes the task's context first.


def _each(fields: list, reason_of):
    def test(answer: dict, attributes: dict) -> Optional[str]:
        for field in fields:
            value = answer[field]
            for text in _texts(value):
                reason = reason_of(text, field, attributes)
                if reason:
                    return f"{_where(field, value, text)}: {reason}"
        return None

    return test


def echo(context: TaskContext, fields: list):
    return _each(fields, lambda text, field, attributes: echo_reason(text, context, attributes))


def placeholder(context: TaskContext, fields: list, allow: list = ()):
    unknown = set(allow) - {"number", "letter"}
    if unknown:
        raise TypeError(f"allow takes number and letter, not {', '.join(sorted(unknown))}")
    return _each(fields, lambda text, field, attributes: placeholder_reason(text, tuple(allow)))


def label(context: TaskContext, fields: list):
    def reason(text: str, field: str, attributes: dict) -> Optional[str]:
        return (
            meta_label_reason(text)
            or placeholder_reason(text, label=True)
            or echo_reason(text, context, attributes, label=True)
        )

    return _each(fields, reason)


def length(context: TaskContext, fields: list, unit: Optional[str] = None, words=None, least=None, most=None):
    """Bounds from a `unit` attribute, a `words` attribute (or number), and/or fixed `least` / `most` words."""
    if unit is None and words is None and least is None and most is None:
        raise TypeError("length needs unit, words, least or most")

    def test_one(text: str, field: str, attributes: dict) -> Optional[str]:
        for asked in (attributes.get(unit) if unit else None, _asked(words, attributes)):
            low, high = word_bounds(asked)
            if low is not None or high is not None:
                described = f"a {asked}" if str(asked) in UNIT_WORDS else _in_words(asked)
                found = length_reason(text, low, high, described)
                if found:
                    return found
        if least is not None or most is not None:
            return length_reason(text, least, most, "this field")
        return None

    return _each(fields, test_one)


def _in_words(asked) -> str:
    return str(asked) if "word" in str(asked) else f"{asked} words"


def _asked(words, attributes: dict):
    if isinstance(words, str):
        return attributes.get(words)
    return words


def attributes_used(kind: str, params: dict) -> list:
    """Attributes a degenerate check names, which the task must have. `words` may name one a preset adds."""
    return [params["unit"]] if kind == "length" and params.get("unit") else []


FACTORIES = {"echo": echo, "placeholder": placeholder, "length": length, "label": label}

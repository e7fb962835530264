"""Checks for answers that are not answers: schema-valid JSON whose fields echo the question instead of answering
it. A weak model fills `S1` with "S1", `label` with "Label", `input_text` with "a sentence to classify", a
`passage` with one word, a file name or a URL. Six kinds, declared per task in its YAML like every check
(synthkit/spec/checks.py):

    - {check: echo, fields: [S1, S2]}            # an output key (whole, or among instruction words), an attribute's
                                                 # name or value, the instructions
    - {check: placeholder, fields: [S1], allow: [number]}   # "...", "N/A", "string", lorem ipsum, a lone letter
    - {check: prose, fields: [S1], allow: [number]}  # URLs, paths, file names, ids, timestamps instead of text
                                                 # (allow: url, path, file, id, timestamp, number)
    - {check: meta, fields: [S1]}                # a text about the task ("A very short story, no more than 20 words")
    - {check: length, fields: [S1], unit: unit}  # a `unit` (sentence, phrase, passage) or `words` attribute's bounds
    - {check: label, fields: [label, misleading_label], text: input_text}   # a meta-word ("label", "category"...),
                                                 # or not shaped like a label: a sentence, longer than the text...

Each test is a pure function of the answer, the drawn attributes and the task's context (output keys, attribute
names, the prompt's template text); lists of strings (brainstorm) are checked item by item. They err towards
letting an answer through: a rejected good row costs a re-ask, but the rules only fire on text that cannot be a
real answer in any language (an echo is made only of the English prompt's own words)."""

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from synthkit.spec.text import tokens, word_count

KINDS_DEGENERATE = ("echo", "placeholder", "prose", "meta", "length", "label")

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
# A slot inside a text: "[Title of the hotel's list]", "[Your Name]", "{company name}"; not "[sic]", "[1]", "[Laughs]",
# nor a Markdown link's text ("[the product page](https://...)")
_SLOT_WORDS = r"(?:name|title|list|insert|your|placeholder|text|date|company|product|link|url|number|address|topic)"
_SLOT = re.compile(rf"[\[{{<](?=[^\]}}>]{{0,60}}\b{_SLOT_WORDS}\b)[^\W\d_][\w' ]{{0,60}}[\]}}>](?!\()", re.I)
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_LETTER = re.compile(r"[^\W\d_]")
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
# Words that join key names into a non-answer ("S1 and S2", "the S1 sentence") wherever the prompt lacks them.
FILLER = frozenset("a an the and or of is are this that here for with to in on as its it your my our".split())
_PLAIN_WORD = re.compile(r"^[^\W\d_]+$")  # letters only: not a number, an id or a key with a digit

# Tokens that are not prose (prose_reason). A URL has a scheme, www. or a path: a bare domain is a name
# ("Booking.com"). An id has parts split by - _ . : # / of which three hold a digit and one a letter
# ("ÚněňŒ-509090-S2-3.19", "A12-345-678"), or is a UUID or a long hash; "COVID-19", "GPT-4o-mini", "XPS-13-9310"
# and "SARS-CoV-2" stay words.
_URL = re.compile(
    r"^(?:[a-z][a-z0-9+.\-]*://|www\.)\S+$|^(?:[\w-]+\.)+(?:com|org|net|io|dev|edu|gov|info|app)/\S*$", re.I
)
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$")
FILE_EXTENSIONS = """txt pdf doc docx xls xlsx csv tsv json jsonl xml yaml yml html htm md png jpg jpeg gif bmp svg webp
    tif tiff mp3 mp4 wav avi mov mkv zip tar gz rar 7z exe dll py ipynb log dat bin ppt pptx odt rtf epub sql db
    parquet""".split()
_FILE = re.compile(r"^[\w.\-]*\w\.(?:" + "|".join(FILE_EXTENSIONS) + r")$", re.I)
_PATH = re.compile(r"^(?:[a-z]:[\\/]|~?/|\.\.?/)\S*[^\W\d_]|^[\w.\-]*[^\W\d_][\w.\-]*(?:[\\/][\w.\-]+){2,}$", re.I)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")  # ISO 8601 with its time: a machine's, not a writer's
_ID_PARTS = re.compile(r"[-_.:#/]+")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_HASH = re.compile(r"^(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{16,}$", re.I)
_STRIP = "\"'`()[]{}<>,;!?“”‘’«»"
_DIGIT = re.compile(r"\d")
# Prose words needed around each URL, file name, id...: "Visit www.example.com for more information" is prose,
# "See https://www.example.com/s1" is not.
PROSE_PER_THING = 3
# What each kind of token is called in a task definition that asks for it ("Given a URL, retrieve the site's
# name"): such a row may be made of them.
_ASKED_FOR = {
    "url": r"urls?|links?|websites?|web ?address(?:es)?|web ?pages?|domains?|hyperlinks?|e-?mails?",
    "path": r"paths?|director(?:y|ies)|folders?|files?",
    "file": r"files?|file ?names?|filenames?|attachments?",
    "id": r"ids?|identifiers?|codes?|serials?|skus?|isbns?|dois?|versions?|part numbers?",
    "timestamp": r"timestamps?|time ?stamps?|logs?|dates?|times?",
    "number": r"numbers?|numeric|numerals?|digits?|dates?|years?|prices?|amounts?|quantit(?:y|ies)|phones?|figures?",
}
_ASKED = {kind: re.compile(rf"\b(?:{words})\b", re.I) for kind, words in _ASKED_FOR.items()}
_CALLED = {"url": "a URL", "path": "a path", "file": "a file name", "id": "an id", "timestamp": "a timestamp"}

# Texts about the task instead of texts of it (meta_reason), English as the prompt is. Each marker is weak alone
# ("A short story about a dragon" is a fair query, "Essays need at least 300 words." a fair sentence); a short
# text with two of them describes a text instead of being one.
META_MOST = 20
_TEXT_NOUN = (
    r"(?:texts?|sentences?|passages?|paragraphs?|documents?|phrases?|stor(?:y|ies)|reviews?|articles?|quer(?:y|ies)|"
    r"examples?|descriptions?|summar(?:y|ies)|tweets?|posts?|e-?mails?|messages?|poems?|essays?|headlines?|inputs?|"
    r"outputs?|answers?|responses?)"
)
_META_MARKERS = {
    # "This passage is...", "Here is an example..."
    "self": re.compile(
        rf"^(?:this|these|the following|here is|here's|below is)\s+(?:[\w-]+,?\s+){{0,2}}{_TEXT_NOUN}\b"
    ),
    # "A very short story, ...", "An example review..."
    "described": re.compile(rf"^(?:an?|one|some)\s+(?:[\w-]+,?\s+){{0,3}}{_TEXT_NOUN}\b"),
    "length": re.compile(
        r"\b\d+\s*(?:(?:-|to|–|and)\s*\d+\s*)?(?:words?|sentences?|characters?|tokens?|paragraphs?|lines?)\b"
    ),
    # "sentiment analysis task", "task description", not "start the task"
    "task": re.compile(
        r"\b(?:classification|retrieval|matching|analysis|this) tasks?\b|\btask (?:description|definition)s?\b"
    ),
    "key": re.compile(r"\b(?:input_text|input text|json|placeholder|output keys?|s[1-3])\b"),  # S1: the recipe's
    # "The original sentence is", "The passage on the importance of...", not "The passage of the bill" (of)
    "subject": re.compile(
        r"^the\s+(?:(?:original|given|first|second|third|other|above|previous|next|last|new|same|two|three|both)\s+"
        r"(?:sentence|passage|phrase|paragraph|text)s?\b|(?:sentence|passage|phrase|paragraph|text)s?\s+"
        r"(?:is|are|has|have|contains?|describes?|says|uses|means|on|about)\b)"
    ),
    # "...not very similar to the other sentences", "This sentence is different."
    "relation": re.compile(
        r"\b(?:similar|different|identical|related|unrelated)\s+(?:to|from|than)\s+(?:the\s+)?"
        r"(?:others?|original|first|second|previous|above)\b|\bthe\s+other\s+(?:two\s+|three\s+)?"
        rf"{_TEXT_NOUN}|\b(?:is|are)\s+(?:\w+\s+)?(?:different|similar|identical|the same)\W*$"
    ),
    # a request to the assistant: "Can you please provide a JSON object..."
    "request": re.compile(
        r"^(?:can|could|would|will) you (?:please )?(?:provide|give|write|generate|create|send)\b|"
        r"\bplease (?:provide|write|generate|create)\b"
    ),
    # a sentence that stops at its verb or article: "The original sentence is"
    "unfinished": re.compile(r"\b(?:is|are|was|were|the|an?)\s*$"),
    # what is said of a text rather than in one: "has multiple errors", "a grammar rule"
    "form": re.compile(
        rf"\b(?:grammar|grammatical|spelling|multiple|several)\s+(?:errors?|mistakes?|rules?)\b|\bmultiple\s+"
        rf"{_TEXT_NOUN}|\b(?:transliteration|paraphrase|similarity score|semantic similarity)\b"
    ),
    "without": re.compile(rf"\b(?:with no|without( an?)?|no)\s+(?:\w+[_ ])?{_TEXT_NOUN}\b"),
}

# Labels (label_shape_reason): a class name of a few words, not a sentence, never longer than the text it labels.
LABEL_MOST = 10
_SENTENCE_END = re.compile(r"[.!?。！？]\s*$")
_INNER_SENTENCE = re.compile(r"[^\W\d_]{2,}[.!?。！？]\s+\S")


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


def texts_of(value) -> list:
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
    core = " ".join(w for w in said.split() if w not in FILLER)
    if core != said and core in keys:  # "your positive document", "the input"
        return f"it is the output key name {keys[core]!r} with filler words, not a value"
    numbered = _numbered_key(said, tuple(keys))
    if numbered:
        return f"it is the output key name {keys[numbered]!r} with a number, not a value"
    names = _normalised(context.attributes)
    if said in names:
        return f"it is the attribute name {names[said]!r}, not a value"
    for name, value in attributes.items():
        value = _normalised_value(str(value))
        # A label may be a short drawn value ("English" for a language-identification task); not the definition.
        if said == value and (not label or len(value.split()) >= 3):
            return f"it repeats the {name} the prompt gave ({value!r})"
    words = tokens(text)
    if len(words) > 2 * ECHO_MOST:
        return None
    vocabulary = _Vocabulary(context, attributes)
    if ECHO_LEAST <= len(words) <= ECHO_MOST and all(w in vocabulary for w in words):
        return "it restates the instructions instead of following them"
    return _keys_inside(words, context, vocabulary)


def _numbered_key(said: str, keys: tuple) -> Optional[str]:
    """The key that `said` is with a number after it ("S12", "query 2"), or None."""
    for key in keys:
        if said.startswith(key) and said[len(key) :].strip().isdigit():
            return key
    return None


@functools.lru_cache(maxsize=4096)  # attribute values repeat from row to row; every field of every answer asks
def _normalised_value(value: str) -> str:
    return _normalise(value)


class _Vocabulary:
    """The instructions' words and the drawn values' words, those read only when the instructions' own do not
    hold a word. A chunk of the user's corpus (task=grounded_retrieval) is what to write about, not
    instructions: a keyword query made of its words is an answer."""

    def __init__(self, context: TaskContext, attributes: dict):
        self._instructions, self._attributes, self._drawn = context.instruction_words(), attributes, None

    def __contains__(self, word: str) -> bool:
        if word in self._instructions:
            return True
        if self._drawn is None:
            self._drawn = _words_of(
                tuple(str(v) for v in self._attributes.values() if getattr(v, "chunk", None) is None)
            )
        return word in self._drawn


@functools.lru_cache(maxsize=1024)  # a row's values, read for each of its fields
def _words_of(values: tuple) -> frozenset:
    return frozenset(w for v in values for w in tokens(v))


def _keys_inside(words: list, context: TaskContext, vocabulary) -> Optional[str]:
    """Output keys inside a field. A key with an underscore (input_text) is no word of any text: with words
    around it, the field talks about the answer. Other keys (S1, query) are words too ("Amazon S3"): only the
    prompt's own words and fillers around them make an echo ("S1 and S2", "the S1 sentence"). A key before
    numbers alone is left alone: there is no word in it to judge."""
    keys = {key.lower() for key in context.output_keys}
    named = [w for w in words if w in keys]
    if not named:
        return None
    rest = [w for w in words if w not in keys]
    plain = [w for w in rest if _PLAIN_WORD.match(w)]
    underscored = next((w for w in named if "_" in w), None)
    if underscored and plain:
        return f"it names the output key {underscored!r} instead of giving its value"
    if rest and len(words) <= ECHO_MOST and all(w in vocabulary or w in FILLER for w in rest):
        return f"it is the output key {named[0]!r} with words of the instructions, not a value"
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
    slot = _SLOT.search(text)
    if slot:
        return f"it has a template slot ({slot.group(0)[:40]!r}) to fill in, not the text itself"
    looped = _loop(text)
    if looped:
        return f"it goes round in circles ({looped!r} again and again): a model looping, not a text"
    if _LONE.match(text) and not label:
        lone = "number" if text.strip()[0].isdigit() else "letter"
        if lone not in allow:
            return f"it is a lone {lone} ({text.strip()!r})"
    return None


# A looping text: the words inside 5-word runs that come back LOOP_TIMES times or more, each within LOOP_GAP words
# of the last, are LOOP_SHARE of it or more.
# Prose stays under 0.1 (licences, this README, the sample answers); a list of shell commands reaches 0.34.
LOOP_WORDS, LOOP_TIMES, LOOP_SHARE, LOOP_LEAST, LOOP_GAP = 5, 3, 0.4, 15, 16
_SPACED_WORD = re.compile(r"[^\s.,;:!?\"'()\[\]{}«»“”‘’…]+")  # a word between spaces and punctuation


def _loop(text: str) -> Optional[str]:
    """The run of words that `text` repeats over and over, or None."""
    pieces = _SPACED_WORD.findall(text.lower())
    if len(text) <= 12 * len(pieces):  # spaced words (str methods: this runs on every field of every answer)
        words, n, gap = pieces, LOOP_WORDS, LOOP_GAP
    else:  # a character a token (Han, Thai): longer runs, counted in characters
        words, n, gap = tokens(text), 3 * LOOP_WORDS, 2 * LOOP_GAP
    if len(words) < LOOP_LEAST:
        return None
    runs = list(zip(*(words[k:] for k in range(n))))
    counts = Counter(runs)
    if max(counts.values()) < LOOP_TIMES:  # prose: no run comes back three times, nothing more to count
        return None
    last, close = {}, Counter()
    for i, run in enumerate(runs):  # a loop comes back soon; a text that quotes a whole paragraph again does not
        if counts[run] >= LOOP_TIMES:
            if i - last.get(run, -gap - 1) <= gap:
                close[run] += 1
            last[run] = i
    covered = {i + k for i, run in enumerate(runs) if close[run] >= LOOP_TIMES - 1 for k in range(n)}
    if len(covered) < LOOP_SHARE * len(words):
        return None
    return " ".join(max(close, key=close.get))


def meta_label_reason(text: str) -> Optional[str]:
    """`text` names a label instead of being one."""
    said = _normalise(text)
    if _META_LABEL.match(said):
        return f"{text.strip()!r} names a label instead of being one; give the label itself"
    return None


def machine_token(token: str) -> Optional[str]:
    """What kind of not-prose token `token` is (url, path, file, id, timestamp), or None for a word."""
    token = token.strip(_STRIP).rstrip(".:")
    if not token or token.isalpha():  # letters alone are a word: every kind below needs a digit or a mark
        return None
    if token.isalnum():  # letters and digits: of the kinds below only a long hex hash has no mark
        return "id" if _HASH.match(token) else None
    if _URL.match(token) or _EMAIL.match(token):
        return "url"
    if _TIMESTAMP.search(token):
        return "timestamp"
    if _FILE.match(token):
        return "file"
    if _PATH.match(token):
        return "path"
    if _UUID.match(token) or _HASH.match(token):
        return "id"
    parts = [p for p in _ID_PARTS.split(token) if p]
    with_digit = sum(1 for p in parts if _DIGIT.search(p))
    if with_digit >= 3 and any(not p.isdigit() for p in parts):
        return "id"
    return None


def allowed_by(attributes: dict) -> set:
    """The kinds of tokens the drawn attributes (a task definition, a passage) ask for by name. A passage of the
    user's corpus names what it is about, not what to answer: its "amount" or "year" lets no answer be numbers
    alone (SmolLM2's query "30/35" for a passage on photosynthesis), though its URLs or file names may be asked."""
    values = [v for v in attributes.values() if isinstance(v, str)]
    asked = set(_asked_in(" ".join(v for v in values if getattr(v, "chunk", None) is None)))
    return asked | (_asked_in(" ".join(v for v in values if getattr(v, "chunk", None) is not None)) - {"number"})


@functools.lru_cache(maxsize=1024)  # asked for each field of each answer; a row's values are the same for all
def _asked_in(values: str) -> frozenset:
    return frozenset(kind for kind, asked in _ASKED.items() if asked.search(values))


def prose_reason(text: str, allow: tuple = ()) -> Optional[str]:
    """`text` is made of URLs, paths, file names, ids or timestamps (or, short, only numbers) rather than prose,
    none of which `allow` names. A machine timestamp in a short text is never prose ("... on 2022-01-01T09:00:00")."""
    pieces = text.split()
    found = [(kind, piece) for piece in pieces if (kind := machine_token(piece))]
    if not found:
        # a date or a value alone ("15.05.22"); a long run of numbers may be a table a task asked for
        if "number" not in allow and len(pieces) <= ECHO_MOST and _DIGIT.search(text) and not _LETTER.search(text):
            return f"it is numbers and symbols ({text.strip()[:30]!r}), not a text"
        return None
    counted = [(kind, piece) for kind, piece in found if kind not in allow]
    if not counted:
        return None
    things = {piece for _, piece in found}
    prose = word_count(" ".join(p for p in pieces if p not in things and _LETTER.search(p)))
    kind, piece = counted[0]
    if prose < PROSE_PER_THING * len(counted):
        return f"it is {_CALLED[kind]} ({piece.strip(_STRIP)[:60]!r}), not a text"
    stamp = next((p for k, p in counted if k == "timestamp"), None)
    if stamp and prose <= ECHO_MOST:
        return f"it is a machine timestamp ({stamp.strip(_STRIP)[:40]!r}) with a few words, not a text"
    return None


# A text that opens by saying what it is, at any length: "This task requires matching...", "This is a JSON
# document..." (not "This task requires a screwdriver", "This is a sample of soil")
_META_OPENING = re.compile(
    r"^(?:this|the|my|your)\s+task\s+(?:at\s+hand\s+)?(?:is\s+(?:designed|meant|intended)\s+to\b|(?:is\s+to|requires|"
    r"involves|asks)\s+(?:you\s+|us\s+)?(?:to\s+)?(?:match|retriev|classif|writ|generat|find|identif|determin|rewrit|"
    r"provid)\w*)|"
    r"^(?:this|here)\s+is\s+(?:an?|the|my)\s+(?:valid\s+)?(?:json|(?:sample|template)\s+(?:of\s+)?(?:the\s+)?"
    r"(?:text|document|answer|response|output|input|json|classification|task))\b|"
    # an assistant answering the user instead of writing the text: "It looks like you have a misunderstanding..."
    r"^(?:sure|certainly|of course)[,!.]?\s+here\s+(?:is|are)\b|^as an ai\b|^it (?:looks|seems) like you\b|"
    r"^i(?:'m| am) sorry,? but\b"
)
_NAMING = re.compile(rf"(?:{_TEXT_NOUN}|tasks?)")
# The re-ask's own reason written into the text (min_words: "has 71 words; it needs at least 150"; length: "too few
# for a passage"): a model that answers the feedback instead of fixing its text.
_FEEDBACK = re.compile(
    r"\bhas \d+ words?[;,]? (?:it|but it|and it) needs at least \d+|\btoo (?:few|many) for an? \w+ \(at"
)


def meta_reason(text: str) -> Optional[str]:
    """`text` describes the task or the text asked for instead of being that text."""
    said = " ".join(text.strip().lower().split())
    if not said:
        return None
    if _META_OPENING.match(said):
        return "it says what the task or the answer is instead of being the text asked for"
    if _FEEDBACK.search(said):
        return "it repeats the reason it was asked again instead of being the text asked for"
    if word_count(said) > META_MOST:
        return None
    words = tokens(said)
    if words and len(words) <= 4 and all(w in FILLER or _NAMING.fullmatch(w) for w in words):
        if any(w in FILLER for w in words) and any(_NAMING.fullmatch(w) for w in words):  # "This sentence."
            return "it names a text or the task instead of being a text"
    markers = [name for name, marker in _META_MARKERS.items() if marker.search(said)]
    if "self" in markers and "described" in markers:
        markers.remove("described")
    if len(markers) >= 2:
        return f"it describes the text asked for ({', '.join(markers)}) instead of being it"
    return None


def label_shape_reason(label: str, text: Optional[str] = None, others: tuple = (), most: int = LABEL_MOST):
    """`label` is not shaped like a label: a sentence, more than `most` words, longer than the `text` it labels,
    or a lone letter or number where the task's other labels are words."""
    words = word_count(label)
    lettered = word_count(" ".join(piece for piece in label.split() if _LETTER.search(piece)))  # "Tier 2": 1
    if lettered > most:
        return f"it has {lettered} words; a label is a short class name (at most {most})"
    if words >= 4 and (_SENTENCE_END.search(label.strip()) or _INNER_SENTENCE.search(label)):
        return "it is a sentence; a label is a short class name"
    if text is not None and _LETTER.search(text) and words > word_count(text):
        return f"it is longer than the text it labels ({words} words against {word_count(text)})"
    if _LONE.match(label) and any(not _LONE.match(other) for other in others if other.strip()):
        return f"{label.strip()!r} is a lone character while the task's other label is a word"
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
            for text in texts_of(value):
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


def prose(context: TaskContext, fields: list, allow: list = ()):
    unknown = set(allow) - set(_ASKED_FOR)
    if unknown:
        raise TypeError(f"allow takes {', '.join(_ASKED_FOR)}, not {', '.join(sorted(unknown))}")

    def reason(text: str, field: str, attributes: dict) -> Optional[str]:
        return prose_reason(text, tuple(allow) + tuple(allowed_by(attributes)))

    return _each(fields, reason)


def meta(context: TaskContext, fields: list):
    return _each(fields, lambda text, field, attributes: meta_reason(text))


def label(context: TaskContext, fields: list, text: Optional[str] = None, most: int = LABEL_MOST):
    """`text`: the output key of the text the labels classify (a label is never longer)."""
    if text is not None and not isinstance(text, str):
        raise TypeError(f"text names the one output key the labels classify (got {text!r})")
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise TypeError(f"most is a number of words, such as 10 (got {most!r})")

    def test(answer: dict, attributes: dict) -> Optional[str]:
        labels = {field: texts_of(answer[field]) for field in fields}
        labelled = answer[text] if text and isinstance(answer[text], str) else None
        for field in fields:
            value = answer[field]
            for one in labels[field]:
                others = tuple(t for f, ts in labels.items() if f != field for t in ts)
                reason = (
                    meta_label_reason(one)
                    or placeholder_reason(one, label=True)
                    or echo_reason(one, context, attributes, label=True)
                    or label_shape_reason(one, labelled, others, most)
                )
                if reason:
                    return f"{_where(field, value, one)}: {reason}"
        return None

    return test


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


FACTORIES = {"echo": echo, "placeholder": placeholder, "prose": prose, "meta": meta, "length": length, "label": label}

"""Whether a text is written in the language it was asked for, offline: py3langid's calibrated probabilities
(its model ships inside its wheel, nothing is downloaded; loaded on first use). A check answers ok, wrong (the
text is confidently another language, or the wanted one is implausible), or unchecked with a reason;
bench/langid_eval.py measured the thresholds and the groups of close languages on tests/data/langid_sample.jsonl
and on word salads of each language's own words."""

import functools
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from synthkit.spec.languages import base_language, resolve

# A text is called wrong only when the identifier gives the wanted language (with its close ones) at most
# 1 - CONFIDENT probability, and the found one (with its close ones) at least CONFIDENT. On the sample, 0.8 keeps
# false rejects of correct text at 0 (0.5 has one) while rejecting 67% of wrong-language phrases, 94% of sentences.
CONFIDENT = 0.8
# Short texts (under SHORT letters) get modest probabilities from norm_probs even when the identifier has no doubt
# ("Schlechte Musik": lb 0.72, de 0.21; English 0.001): one is also wrong when the found language has at least
# SHORT_FLOOR and at least SHORT_RATIO times the wanted one's. bench/langid_eval.py on the sample: phrases rejected
# under a wrong label 67% -> 84%, false rejects still 0/157 (a floor of 0.2 makes 1-2: 'aap kaise ho' -> fi 0.27).
SHORT, SHORT_FLOOR, SHORT_RATIO = 30, 0.5, 20
# A text is also wrong when the wanted language is implausible, whatever the others get: at most IMPLAUSIBLE,
# and at most IMPLAUSIBLE_RATIO times the likeliest language's probability (a flat ranking says nothing: "sport"
# gets 0.014 for every language). Spanish word salad asked in German spreads over es, gl and pt (0.89 in all,
# none confident) while German gets 0.004. On bench/langid_eval.py's sample no correct text goes under 0.076 of
# the likeliest ('Bore da', Welsh: 0.012); wrong languages accepted fall from 9.6% to 3.1% (sentences 5.1% to
# 1.2%, word salads of 20 words 5.0% to 1.0%), false rejects stay 0 (bench/langid_eval.md).
# A short text made only of names ("Einstein", "Eiffel Tower", "Leonardo da Vinci") is in no language: the rule
# needs a word of at least PLAIN_LETTERS letters that is not capitalised ("Bien sûr" has "sûr").
IMPLAUSIBLE, IMPLAUSIBLE_RATIO, PLAIN_LETTERS = 0.02, 0.05, 3

# Language name (as synthkit/spec/languages.py names it: the paper's 93 and XLM-R's variants) -> the identifier's
# codes. The first is the name's own ISO code (the registry's, tests/test_values.py holds them equal); all of them
# count as the language, since the identifier confuses close languages (and answers dialect or ancestor codes:
# ext, hbo, ary...). A name marked with "~" has no model of its own: its codes are only the neighbours its texts
# get mistaken for, so the check can still reject confidently-other text. Other spellings resolve to these names.
CODES = {
    "Afrikaans": "af nl",
    "Albanian": "sq",
    "Amharic": "am",
    "Arabic": "ar ary arz",
    "Armenian": "hy",
    "Assamese": "as bn",
    "Azerbaijani": "az tr",
    "Basque": "eu",
    "Belarusian": "be uk ru",
    "Bengali": "bn as",
    "Bengali Romanize": "~bn",
    "Bosnian": "bs hr sr sl",
    "Breton": "br",
    "Bulgarian": "bg mk ru",
    "Burmese": "my",
    "Burmese zawgyi font": "my",
    "Catalan": "ca oc",
    "Chinese": "zh wuu yue",
    "Chinese (Traditional)": "zh wuu yue",
    "Croatian": "hr bs sr sl",
    "Czech": "cs sk",
    "Danish": "da no nn sv",
    "Dutch": "nl af fy",
    "English": "en pcm",
    "Esperanto": "eo",
    "Estonian": "et",
    "Filipino": "tl bcl",
    "Finnish": "fi",
    "French": "fr oc",
    "Galician": "gl pt",
    "Georgian": "ka",
    "German": "de lb",
    "Greek": "el grc",
    "Gujarati": "gu",
    "Hausa": "ha",
    "Hebrew": "he hbo",
    "Hindi": "hi mr ne sa gom",
    "Hindi Romanize": "~hi",
    "Hungarian": "hu",
    "Icelandic": "is fo",
    "Indonesian": "id ms jv",
    "Irish": "ga gd",
    "Italian": "it lij vec",
    "Japanese": "ja",
    "Javanese": "jv id ms",
    "Kannada": "kn",
    "Kazakh": "kk ky",
    "Khmer": "km",
    "Korean": "ko",
    "Kurdish (Kurmanji)": "ku sdh",
    "Kyrgyz": "ky kk",
    "Lao": "lo th",
    "Latin": "la",
    "Latvian": "lv ltg",
    "Lithuanian": "lt",
    "Macedonian": "mk bg sr",
    "Malagasy": "mg",
    "Malay": "ms id",
    "Malayalam": "ml",
    "Marathi": "mr hi gom",
    "Mongolian": "mn",
    "Nepali": "ne hi mr",
    "Norwegian": "no nn da sv",
    "Oriya": "or",
    "Oromo": "om",
    "Pashto": "ps fa",
    "Persian": "fa ur",
    "Polish": "pl",
    "Portuguese": "pt gl",
    "Punjabi": "pa",
    "Romanian": "ro",
    "Russian": "ru uk be",
    "Sanskrit": "sa hi mr ne",
    "Scottish Gaelic": "gd ga",
    "Serbian": "sr hr bs mk",
    "Sindhi": "~sd ar fa ur ps",
    "Sinhala": "si",
    "Slovak": "sk cs",
    "Slovenian": "sl hr bs",
    "Somali": "so",
    "Spanish": "es ext an",
    "Sundanese": "~su jv id ms",
    "Swahili": "sw",
    "Swedish": "sv no da",
    "Tamil": "ta",
    "Tamil Romanize": "~ta",
    "Telugu": "te",
    "Telugu Romanize": "~te",
    "Thai": "th",
    "Turkish": "tr az crh",
    "Ukrainian": "uk ru be",
    "Urdu": "ur fa",
    "Urdu Romanize": "~ur",
    "Uyghur": "ug",
    "Uzbek": "uz uzs",
    "Vietnamese": "vi",
    "Welsh": "cy",
    "Western Frisian": "fy nl",
    "Xhosa": "xh zu",
    "Yiddish": "~yi he hbo",
}

NO_LANGUAGE = "zxx"  # py3langid's answer for codes, ids and numbers
_LETTER = re.compile(r"[^\W\d_]")
# Japanese written in kanji alone ("政治", a label) is Chinese to any identifier: a short text without kana counts
# as Chinese too. Past SHORT letters, Japanese without a single kana is Chinese.
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_model: dict = {}  # the identifier, once loaded, and its columns by code
_loading, _starting = threading.Lock(), threading.Lock()


@dataclass(frozen=True)
class Verdict:
    """ok: the text is in the language (or a close one); wrong: it is confidently `found` instead;
    unchecked: nothing could be said, `reason` tells why (a stable key to count by)."""

    status: str  # "ok" | "wrong" | "unchecked"
    found: str | None = None  # the identifier's best code
    confidence: float = 0.0  # its probability
    reason: str = ""  # for unchecked: unknown_name | no_model | not_confident | no_language; wrong: implausible
    wanted: float = 0.0  # the probability of the wanted language (with its close ones)

    @property
    def outcome(self) -> str:
        return f"unchecked:{self.reason}" if self.status == "unchecked" else self.status


def language_code(name: str) -> tuple:
    """The codes that count as `name` (any spelling the registry knows), its own first; empty for an unknown name."""
    return _codes(name) if isinstance(name, str) else _codes_uncached(name)


@functools.lru_cache(maxsize=4096)  # every text checked asks it, and of every name in CODES for a wrong one
def _codes(name: str) -> tuple:
    return _codes_uncached(name)


def _codes_uncached(name) -> tuple:
    return tuple(CODES.get(resolve(name) or name, "").replace("~", "").split())


def has_model(name: str) -> bool:
    """Whether the identifier knows `name` itself (not only neighbours it is mistaken for)."""
    return _has_model(name) if isinstance(name, str) else _has_model.__wrapped__(name)


@functools.lru_cache(maxsize=4096)
def _has_model(name) -> bool:
    codes = CODES.get(resolve(name) or name)
    return codes is not None and not codes.startswith("~")


def check(text: str, name: str, confident: float = CONFIDENT, ranked: list | None = None) -> Verdict:
    """Is `text` in the language called `name`? `ranked`: the identifier's ranking of `text`, if known."""
    codes = language_code(name)
    if not codes:
        return Verdict("unchecked", reason="unknown_name")
    letters = len(_LETTER.findall(text))
    if not letters:
        return Verdict("unchecked", reason="no_language")
    short = letters < SHORT
    also = language_code("Chinese") if codes[0] == "ja" and short and not _KANA.search(text) else ()
    names_only = short and not _has_plain_word(text)
    best, probability = (ranked[0], dict(ranked)) if ranked else _scores(text)
    return _decide(best, probability, name, confident, short, also, names_only)


def _has_plain_word(text: str) -> bool:
    """Whether `text` has a word that is no name: no capital (Paris, iPhone), no digit, PLAIN_LETTERS letters or
    more."""
    for token in text.split():
        letters = _LETTER.findall(token)
        if len(letters) >= PLAIN_LETTERS and not any(c.isupper() or c.isdigit() for c in token):
            return True
    return False


def decide(
    ranked: list, name: str, confident: float = CONFIDENT, short: bool = False, also: tuple = (), names_only=False
) -> Verdict:
    """The verdict for a text whose identifier ranking is `ranked` ((code, probability), best first); `short`:
    the text has under SHORT letters; `also`: codes that count as `name` for this text; `names_only`: the text
    is a short one made of names (no implausible rule)."""
    return _decide(ranked[0], dict(ranked), name, confident, short, also, names_only)


def _decide(best: tuple, probability, name: str, confident: float, short: bool, also: tuple, names_only) -> Verdict:
    """decide, given the best (code, probability) and the probability of any code (`probability.get`)."""
    codes = language_code(name) + tuple(also)
    if not codes:
        return Verdict("unchecked", reason="unknown_name")
    found, p = best
    if found == NO_LANGUAGE:
        return Verdict("unchecked", found, p, "no_language")
    if found in also and found not in language_code(name):
        return Verdict("unchecked", found, p, "not_confident")
    if found in codes:
        return Verdict("ok", found, p) if has_model(name) else Verdict("unchecked", found, p, "no_model")
    # Wrong needs both: the found language, with the close ones it is confused with, is likely, and the wanted
    # language is not: a clearly-other text can split its probability within a cluster (mr 0.87, gom 0.13).
    cluster = _cluster(found)
    likely = sum(probability.get(c, 0.0) for c in cluster)
    wanted = sum(probability.get(c, 0.0) for c in codes)
    if likely >= confident and wanted <= 1 - confident:
        return Verdict("wrong", _likeliest(found, probability), likely, wanted=wanted)
    if not has_model(name):
        # the rules below weigh the wanted language's own probability, which a name the identifier does not
        # model has not: romanized Hindi gets no Hindi at all ('Delhi dadi milenge jayenge': jv 0.56)
        return Verdict("unchecked", found, p, "no_model")
    if short and likely >= SHORT_FLOOR and wanted * SHORT_RATIO <= likely:
        return Verdict("wrong", _likeliest(found, probability), likely, wanted=wanted)
    if not names_only and wanted <= IMPLAUSIBLE and wanted <= IMPLAUSIBLE_RATIO * p:
        return Verdict("wrong", _likeliest(found, probability), likely, "implausible", wanted)
    return Verdict("unchecked", found, p, "not_confident")


def language_name(code: str) -> str:
    """The language whose ISO code is `code`, or the code itself (the identifier knows codes the registry does not)."""
    name = resolve(code)
    return base_language(name) if name else code


@functools.cache
def _cluster(code: str) -> tuple:
    """`code` with every code counted as the same language as it by some name: lb counts with de (German),
    sr with hr, bs, sl, mk, bg."""
    cluster = {code}
    for codes in map(language_code, CODES):
        if code in codes:
            cluster.update(codes)
    return tuple(sorted(cluster))


def _likeliest(code: str, probability) -> str:
    """`code` when it is some language's own; else the own code of the likeliest language counting it as its
    own (lb -> de), for the message."""
    names = _owners(code)
    if not names or any(codes[0] == code for codes in names):
        return code
    return max(names, key=lambda codes: sum(probability.get(c, 0.0) for c in codes))[0]


@functools.cache
def _owners(code: str) -> list:
    """The codes of each modelled language that counts `code` as its own."""
    return [language_code(n) for n in CODES if code in language_code(n) and has_model(n)]


def rank(text: str) -> list:
    """(code, probability) for every language the identifier knows, most likely first."""
    return identifier().rank(text)


def identifier(cache_dir: Optional[Path] = None):
    """py3langid's identifier, loaded once: from its copy in `cache_dir` (synthkit/spec/langid_model.py), else
    unpacked from the wheel (half a second: 68 MB of LZMA-packed arrays). A second caller waits for the first's load
    (load_in_background)."""
    if "identifier" not in _model:
        with _loading:
            if "identifier" not in _model:
                from synthkit.spec import langid_model

                loaded = langid_model.load(cache_dir)
                _model["column"] = {}  # a code's column: its first (aliases are folded into it)
                for column, code in enumerate(loaded.nb_classes):
                    _model["column"].setdefault(code, column)
                _model["identifier"] = loaded
    return _model["identifier"]


def load_in_background(cache_dir: Optional[Path] = None) -> None:
    """Start loading the identifier in a thread, once, while a run sets itself up (from the cache dir's copy, or
    unpacking the wheel's, which runs beside the interpreter); `wait_loaded` waits for it before the first request."""
    with _starting:
        if "identifier" not in _model and "thread" not in _model:
            _model["thread"] = threading.Thread(
                target=_load_quietly, args=(cache_dir,), name="synthkit-langid-load", daemon=True
            )
            _model["thread"].start()


def wait_loaded() -> None:
    """Wait for a load `load_in_background` started (a failed one is tried again, and fails, at the first check)."""
    thread = _model.get("thread")
    if thread is not None:
        thread.join()


def _load_quietly(cache_dir: Optional[Path]) -> None:
    try:
        identifier(cache_dir)
    except Exception:  # the first check loads it again and fails where its error can be reported
        pass


class _Probabilities:
    """The identifier's probability of any code for one text (what dict(rank(text)) holds, without building and
    sorting the whole ranking for the few codes a verdict reads)."""

    __slots__ = ("_scores",)

    def __init__(self, scores):
        self._scores = scores

    def get(self, code: str, default: float = 0.0) -> float:
        column = _model["column"].get(code)
        return default if column is None else float(self._scores[column])


def _scores(text: str) -> tuple:
    """(the likeliest (code, probability), the probabilities) of `text`: rank's first entry and its dict."""
    ident = identifier()
    scores = ident._decide(text)  # what rank() sorts; py3langid is pinned (pyproject), tests/test_langid.py holds it
    best = int(scores.argmax())
    return (ident.nb_classes[best], float(scores[best])), _Probabilities(scores)

"""Whether a text is written in the script of its language: Chinese in Han characters, Russian in Cyrillic,
Hindi in Devanagari, Hindi Romanize in Latin letters. The language identifier is unsure of short texts
("Luigi and Fusaake" asked in Chinese comes out Estonian at 0.11, so the language check alone lets it
through); the script of the letters is certain at any length. Scripts are the Unicode Script property
(the `regex` module's \\p{Script=...}), so every letter of a script counts, whatever its block."""

import functools
from dataclasses import dataclass
from typing import Optional

import regex

from synthkit.spec.langid import language_code

# The scripts each language is written in, by the language's own code (synthkit.spec.langid.CODES). Where
# two are in use (Serbian, Uzbek, Kazakh, Punjabi...) both count; a script of a minority of its writers
# counts too (Malay in Jawi), since the check is there for text in a clearly foreign script.
_WRITTEN_IN = {
    "Latin": """af az br bs ca cs cy da de en eo es et eu fi fr fy ga gd gl ha hr hu id is it jv kk ku la lt lv mg
        ms nl no om pl pt ro sk sl so sq sr su sv sw tl tr ug uz vi xh""",
    "Cyrillic": "az be bg bs kk ky mk mn ru sr ug uk uz",
    "Arabic": "ar az fa ha ku ms pa ps sd ug ur",
    "Hebrew": "he yi",
    "Greek": "el",
    "Armenian": "hy",
    "Georgian": "ka",
    "Ethiopic": "am",
    "Devanagari": "hi mr ne sa sd",
    "Bengali": "as bn",
    "Gurmukhi": "pa",
    "Gujarati": "gu",
    "Oriya": "or",
    "Tamil": "ta",
    "Telugu": "te",
    "Kannada": "kn",
    "Malayalam": "ml",
    "Sinhala": "si",
    "Thai": "th",
    "Lao": "lo",
    "Khmer": "km",
    "Myanmar": "my",
    "Han": "ja ko zh",
    "Hiragana": "ja",
    "Katakana": "ja",
    "Hangul": "ko",
    "Mongolian": "mn",
    "Javanese": "jv",
    "Sundanese": "su",
}
SCRIPTS_OF: dict = {}
for _script, _codes in _WRITTEN_IN.items():
    for _code in _codes.split():
        SCRIPTS_OF.setdefault(_code, set()).add(_script)

# Scripts written without spaces between words, with their characters per word (as synthkit.spec.text counts
# lengths): a Han character weighs 1/1.7 of a word, so a Chinese sentence with a Latin product name in it
# is still mostly Chinese.
CHARS_PER_WORD = {"Han": 1.7, "Hiragana": 2.0, "Katakana": 2.0, "Thai": 4.0, "Lao": 4.0, "Khmer": 5.0, "Myanmar": 4.5}
# A letter of a script not listed above weighs this much (about a word per five letters).
OTHER_PER_WORD = 5.0
# A text is in its script when at least this share of its words is (names aside, see script_words).
MOSTLY = 0.5

_SPACED = [s for s in dict.fromkeys(_WRITTEN_IN) if s not in CHARS_PER_WORD]
_SEGMENT = regex.compile(
    "|".join(
        [f"(?P<{s}>\\p{{Script={s}}})" for s in CHARS_PER_WORD]
        # a word of a spaced script: its letters with their combining marks (Devanagari vowel signs...)
        + [f"(?P<{s}>\\p{{Script={s}}}[\\p{{Script={s}}}\\p{{M}}]*)" for s in _SPACED]
        # a letter of any other script; the Common and Inherited ones (Japanese ー, 々's kin) belong to none
        + ["(?P<Other>[[\\p{L}]--[\\p{Script=Common}\\p{Script=Inherited}]])"]
    ),
    regex.VERSION1,
)
_CODE = regex.compile(r"[\d_]")
_DIGITS = regex.compile(r"\d")
_LETTERS = regex.compile(r"\p{L}")


@dataclass(frozen=True)
class ScriptCount:
    """Words of a text (estimated as synthkit.spec.text does) in the wanted scripts, in others, and names."""

    wanted: float
    other: float
    names: float
    main_other: Optional[str]  # the script most of the other words (and names) are in


def scripts_of(name: str) -> Optional[set]:
    """The scripts the language called `name` is written in; None when synthkit cannot say."""
    if "romaniz" in name.lower():  # Hindi Romanize, Urdu Romanize...: Latin letters, whatever the language
        return {"Latin"}
    codes = language_code(name)
    return SCRIPTS_OF.get(codes[0]) if codes else None


def script_words(text: str, wanted: frozenset) -> ScriptCount:
    """Counts the words of `text` by script. A capitalised word of another spaced script is a name
    (`Python`, `iPhone`, `Apple` in a Chinese or Russian text): it counts apart, neither for nor against.
    Codes are no words of any script: a token with a digit or an underscore (`S2`, `GPT4`, `user_id`) counts
    for nothing."""
    wanted_words = other_words = names = 0.0
    by_script: dict = {}
    words = " ".join(token for token in text.split() if not _CODE.search(token))
    for match in _SEGMENT.finditer(words):
        script = match.lastgroup
        segment = match.group()
        weight = 1 / CHARS_PER_WORD[script] if script in CHARS_PER_WORD else 1.0
        if script == "Other":
            weight = 1 / OTHER_PER_WORD
        if script in wanted:
            wanted_words += weight
            continue
        if script in _SPACED and (segment[0].isupper() or _has_inner_capital(segment)):
            names += weight
        else:
            other_words += weight
        by_script[script] = by_script.get(script, 0.0) + weight
    main = max(by_script, key=by_script.get) if by_script else None
    return ScriptCount(wanted_words, other_words, names, main)


def _has_inner_capital(segment: str) -> bool:
    return any(ch.isupper() for ch in segment[1:])  # iPhone, eBay: brand names


def script_reason(text: str, name: str) -> Optional[str]:
    """Why `text` is not written in the script of the language `name`, or None (also when synthkit does not
    know the language's scripts, or the text has no letters)."""
    scripts = scripts_of(name)
    if not scripts or len(_DIGITS.findall(text)) > len(_LETTERS.findall(text)):
        return None  # mostly numbers: no script to judge (the prose check judges such texts)
    if not _foreign_letter(frozenset(scripts)).search(text):
        return None  # every letter is in its scripts (or in none): no word of another script to count
    count = script_words(text, frozenset(scripts))
    if count.wanted == 0 and (count.other or count.names):
        return (
            f"it has no word in the {_listed(scripts)} script {name} is written in, "
            f"only {_script_name(count.main_other)} letters"
        )
    if count.wanted < MOSTLY * (count.wanted + count.other):
        share = count.other / (count.wanted + count.other)
        return (
            f"{share:.0%} of its words are in {_script_name(count.main_other)} letters, "
            f"not in the {_listed(scripts)} script {name} is written in"
        )
    return None


@functools.lru_cache(maxsize=64)
def _foreign_letter(scripts: frozenset):
    """A character of a script other than `scripts` (a letter, a mark, a numeral): where script_words may find a
    word of another script. Common (spaces, punctuation, digits), Inherited and unassigned ones belong to none."""
    own = "".join(f"\\p{{Script={script}}}" for script in sorted(scripts))
    return regex.compile(f"[^{own}\\p{{Script=Common}}\\p{{Script=Inherited}}\\p{{Script=Unknown}}]")


def _script_name(script: Optional[str]) -> str:
    return "other" if script in (None, "Other") else script


def _listed(scripts: set) -> str:
    return " or ".join(sorted(scripts))

"""The language registry: one canonical name per language (the paper's 93, spec §3), its ISO code (the dataset
card's tag) and the other names and codes people write for it, plus XLM-R's script variants. Every place that
reads a language name (attribute values, the language check, the card) resolves it here, so "german", "de",
"deu" and "German" are one value, and "Chinese (Simplified)" is "Chinese".

A variant (a romanized or font form, Traditional Chinese) is a name of its own with a base language: it is a
valid value, counts as its base language where two languages must differ, and is drawn only where the user
names it (synthkit/spec/task.py)."""

import difflib
import functools
import re
from typing import Optional

# Name: (the card's tag: ISO 639-1, or 639-3 where there is none; then other codes and names of the language).
LANGUAGES = {
    "Afrikaans": ("af", "afr"),
    "Albanian": ("sq", "sqi", "alb"),
    "Amharic": ("am", "amh"),
    "Arabic": ("ar", "ara"),
    "Armenian": ("hy", "hye", "arm"),
    "Assamese": ("as", "asm"),
    "Azerbaijani": ("az", "aze", "Azeri"),
    "Basque": ("eu", "eus", "baq"),
    "Belarusian": ("be", "bel", "Belarussian"),
    "Bengali": ("bn", "ben", "Bangla"),
    "Bosnian": ("bs", "bos"),
    "Breton": ("br", "bre"),
    "Bulgarian": ("bg", "bul"),
    "Burmese": ("my", "mya", "bur", "Myanmar"),
    "Catalan": ("ca", "cat", "Valencian"),
    # XLM-R publishes Simplified Chinese as "Chinese (Simplified)"; the paper and every list here say "Chinese".
    "Chinese": (
        "zh",
        "zho",
        "chi",
        "cmn",
        "Mandarin",
        "Chinese (Simplified)",
        "Simplified Chinese",
        "zh-Hans",
        "zh-CN",
    ),
    "Croatian": ("hr", "hrv"),
    "Czech": ("cs", "ces", "cze"),
    "Danish": ("da", "dan"),
    "Dutch": ("nl", "nld", "dut", "Flemish"),
    "English": ("en", "eng"),
    "Esperanto": ("eo", "epo"),
    "Estonian": ("et", "est"),
    "Filipino": ("tl", "fil", "tgl", "Tagalog"),
    "Finnish": ("fi", "fin"),
    "French": ("fr", "fra", "fre"),
    "Galician": ("gl", "glg"),
    "Georgian": ("ka", "kat", "geo"),
    "German": ("de", "deu", "ger", "Deutsch"),
    "Greek": ("el", "ell", "gre", "Modern Greek"),
    "Gujarati": ("gu", "guj"),
    "Hausa": ("ha", "hau"),
    "Hebrew": ("he", "heb", "iw"),
    "Hindi": ("hi", "hin"),
    "Hungarian": ("hu", "hun"),
    "Icelandic": ("is", "isl", "ice"),
    "Indonesian": ("id", "ind", "Bahasa Indonesia"),
    "Irish": ("ga", "gle", "Irish Gaelic"),
    "Italian": ("it", "ita"),
    "Japanese": ("ja", "jpn"),
    "Javanese": ("jv", "jav"),
    "Kannada": ("kn", "kan"),
    "Kazakh": ("kk", "kaz"),
    "Khmer": ("km", "khm", "Cambodian"),
    "Korean": ("ko", "kor"),
    "Kurdish (Kurmanji)": ("ku", "kmr", "kur", "Kurdish", "Kurmanji", "Northern Kurdish"),
    "Kyrgyz": ("ky", "kir", "Kirghiz"),
    "Lao": ("lo", "lao", "Laotian"),
    "Latin": ("la", "lat"),
    "Latvian": ("lv", "lav"),
    "Lithuanian": ("lt", "lit"),
    "Macedonian": ("mk", "mkd", "mac"),
    "Malagasy": ("mg", "mlg"),
    "Malay": ("ms", "msa", "may", "zsm"),
    "Malayalam": ("ml", "mal"),
    "Marathi": ("mr", "mar"),
    "Mongolian": ("mn", "mon"),
    "Nepali": ("ne", "nep"),
    "Norwegian": ("no", "nor", "nb", "nob", "Norwegian Bokmal", "Norwegian Bokmål", "Bokmål"),
    "Oriya": ("or", "ori", "ory", "Odia"),
    "Oromo": ("om", "orm"),
    "Pashto": ("ps", "pus", "Pushto"),
    "Persian": ("fa", "fas", "per", "Farsi"),
    "Polish": ("pl", "pol"),
    "Portuguese": ("pt", "por"),
    "Punjabi": ("pa", "pan", "Panjabi"),
    "Romanian": ("ro", "ron", "rum", "Moldovan"),
    "Russian": ("ru", "rus"),
    "Sanskrit": ("sa", "san"),
    "Scottish Gaelic": ("gd", "gla", "Gaelic"),
    "Serbian": ("sr", "srp"),
    "Sindhi": ("sd", "snd"),
    "Sinhala": ("si", "sin", "Sinhalese"),
    "Slovak": ("sk", "slk", "slo"),
    "Slovenian": ("sl", "slv", "Slovene"),
    "Somali": ("so", "som"),
    "Spanish": ("es", "spa", "Castilian"),
    "Sundanese": ("su", "sun"),
    "Swahili": ("sw", "swa", "swh", "Kiswahili"),
    "Swedish": ("sv", "swe"),
    "Tamil": ("ta", "tam"),
    "Telugu": ("te", "tel"),
    "Thai": ("th", "tha"),
    "Turkish": ("tr", "tur"),
    "Ukrainian": ("uk", "ukr"),
    "Urdu": ("ur", "urd"),
    "Uyghur": ("ug", "uig", "Uighur"),
    "Uzbek": ("uz", "uzb"),
    "Vietnamese": ("vi", "vie"),
    "Welsh": ("cy", "cym", "wel"),
    "Western Frisian": ("fy", "fry", "Frisian", "West Frisian"),
    "Xhosa": ("xh", "xho", "isiXhosa"),
    "Yiddish": ("yi", "yid"),
}


def _romanized(base: str, code: str) -> tuple:
    return (base, f"{base} Romanized", f"Romanized {base}", f"{base} (Romanized)", f"{code}-Latn")


# XLM-R's names that are a script or font of a language above: name -> (base language, other names).
VARIANTS = {
    "Chinese (Traditional)": ("Chinese", "Traditional Chinese", "zh-Hant", "zh-TW", "zh-HK"),
    "Bengali Romanize": _romanized("Bengali", "bn"),
    "Hindi Romanize": _romanized("Hindi", "hi"),
    "Tamil Romanize": _romanized("Tamil", "ta"),
    "Telugu Romanize": _romanized("Telugu", "te"),
    "Urdu Romanize": _romanized("Urdu", "ur"),
    "Burmese zawgyi font": ("Burmese", "Burmese Zawgyi", "Zawgyi", "my-Zawgyi"),
}


def _key(text: str) -> str:
    """How names are compared: case, spacing and `_` against `-` aside (zh_CN is zh-CN)."""
    return " ".join(str(text).replace("_", "-").casefold().split())


def _lookup() -> dict:
    table: dict = {}
    for name, (code, *others) in LANGUAGES.items():
        for spelling in (name, code, *others):
            table.setdefault(_key(spelling), name)
    for name, (_, *others) in VARIANTS.items():
        for spelling in (name, *others):
            table.setdefault(_key(spelling), name)
    return table


_BY_SPELLING = _lookup()
_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})+")


def is_language_attribute(attribute: str) -> bool:
    """Attributes named `language` or `<something>_language` hold language names."""
    return attribute == "language" or attribute.endswith("_language")


def resolve(text: object) -> Optional[str]:
    """The registry's name for a language name, alias or code (case aside), a variant's own name; None if unknown.
    A BCP 47 tag falls back to its shorter forms: zh-Hant-TW is zh-Hant, pt-BR is pt."""
    key = _key(text)
    if key in _BY_SPELLING:
        return _BY_SPELLING[key]
    if _TAG.fullmatch(key):
        parts = key.split("-")
        for end in range(len(parts) - 1, 0, -1):
            shorter = "-".join(parts[:end])
            if shorter in _BY_SPELLING:
                return _BY_SPELLING[shorter]
    return None


def base_language(name: object) -> str:
    """The language a name stands for: a variant's base, an alias's name; an unknown name stands for itself."""
    return _base(name) if isinstance(name, str) else _key(name)


@functools.lru_cache(maxsize=4096)  # draws compare a row's language with a domain's, many times a row
def _base(name: str) -> str:
    resolved = resolve(name)
    if resolved is None:
        return _key(name)
    return VARIANTS[resolved][0] if resolved in VARIANTS else resolved


def same_language(a: object, b: object) -> bool:
    """Whether two names are one language ("Chinese" and "Chinese (Simplified)", "Hindi" and "Hindi Romanize")."""
    return base_language(a) == base_language(b)


def is_variant(name: object) -> bool:
    return resolve(name) in VARIANTS


def iso_code(name: object) -> Optional[str]:
    """The card's tag for a language name (a variant's is its base language's), None for an unknown name."""
    resolved = resolve(name)
    if resolved is None:
        return None
    return LANGUAGES[base_language(resolved)][0]


def close_names(text: object, names, n: int = 4) -> list:
    """Up to n of `names` that `text` looks like a misspelling of, by their names, aliases and codes."""
    wanted = {resolve(name) or name: name for name in names}
    spellings = {key: wanted[name] for key, name in _BY_SPELLING.items() if name in wanted and len(key) > 3}
    spellings.update({_key(name): name for name in names})
    close = difflib.get_close_matches(_key(text), list(spellings), n=n * 3, cutoff=0.75)
    return list(dict.fromkeys(spellings[key] for key in close))[:n]

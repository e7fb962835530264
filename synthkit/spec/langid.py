"""Which language a text is in, offline: py3langid, whose model ships inside its wheel (nothing is
downloaded). Loaded on first use. Languages it cannot tell (romanized scripts, Sanskrit's few
samples...) are not checked, and texts too short to judge are let through."""

import re
from typing import Optional

MIN_LETTERS = 30  # texts with fewer letters give unreliable guesses

# XLM-R names (spec §3) -> the ISO 639-1/3 codes py3langid may answer for them. Close languages it
# confuses count as each other. Names absent here are not checked.
CODES = {
    "Afrikaans": "af", "Albanian": "sq", "Amharic": "am", "Arabic": "ar arz ary", "Armenian": "hy",
    "Assamese": "as bn", "Azerbaijani": "az", "Basque": "eu", "Belarusian": "be", "Bengali": "bn as",
    "Bosnian": "bs hr sr", "Breton": "br", "Bulgarian": "bg mk", "Burmese": "my", "Catalan": "ca",
    "Chinese": "zh wuu yue", "Chinese (Simplified)": "zh wuu yue", "Chinese (Traditional)": "zh wuu yue",
    "Croatian": "hr bs sr", "Czech": "cs sk", "Danish": "da no nn", "Dutch": "nl af", "English": "en",
    "Esperanto": "eo", "Estonian": "et", "Filipino": "tl", "Finnish": "fi", "French": "fr", "Galician": "gl pt es",
    "Georgian": "ka", "German": "de", "Greek": "el", "Gujarati": "gu", "Hausa": "ha", "Hebrew": "he",
    "Hindi": "hi mr ne", "Hungarian": "hu", "Icelandic": "is", "Indonesian": "id ms", "Irish": "ga",
    "Italian": "it", "Japanese": "ja", "Javanese": "jv", "Kannada": "kn", "Kazakh": "kk", "Khmer": "km",
    "Korean": "ko", "Kurdish (Kurmanji)": "ku", "Kyrgyz": "ky", "Lao": "lo", "Latin": "la", "Latvian": "lv ltg",
    "Lithuanian": "lt", "Macedonian": "mk bg", "Malagasy": "mg", "Malay": "ms id", "Malayalam": "ml",
    "Marathi": "mr hi", "Mongolian": "mn", "Nepali": "ne hi", "Norwegian": "no nn da", "Oriya": "or",
    "Oromo": "om", "Pashto": "ps", "Persian": "fa", "Polish": "pl", "Portuguese": "pt gl", "Punjabi": "pa",
    "Romanian": "ro", "Russian": "ru", "Scottish Gaelic": "gd", "Serbian": "sr hr bs",
    "Sinhala": "si", "Slovak": "sk cs", "Slovenian": "sl", "Somali": "so", "Spanish": "es gl",
    "Swahili": "sw", "Swedish": "sv", "Tamil": "ta", "Telugu": "te", "Thai": "th",
    "Turkish": "tr", "Ukrainian": "uk", "Urdu": "ur", "Uyghur": "ug", "Uzbek": "uz uzs", "Vietnamese": "vi",
    "Welsh": "cy", "Western Frisian": "fy", "Xhosa": "xh",
}

_identifier = None
_LETTER = re.compile(r"[^\W\d_]")


def language_code(name: str) -> tuple:
    """The codes that count as `name`; empty when the language is not checked."""
    return tuple(CODES.get(name, "").split())


def detect(text: str) -> Optional[str]:
    """The code of the language `text` is written in, or None when it is too short to tell."""
    global _identifier
    if len(_LETTER.findall(text, 0, 20 * MIN_LETTERS)) < MIN_LETTERS:
        return None
    if _identifier is None:
        import py3langid.langid as langid

        langid.classify("")  # builds its module-level identifier from the packaged model
        _identifier = langid.IDENTIFIER
    return _identifier.classify(text)[0]

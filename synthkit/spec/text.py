"""Words in any script. Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer,
Burmese) have no words to split on, so a length in words is estimated from their characters with a
per-script ratio of characters per word (approximate averages of running text: Chinese 1.7, Japanese kana
2, Thai 4, Lao 4, Khmer 5, Burmese 4.5); other scripts count space-separated words. Tokens for
comparing texts are those words, and single characters in the scripts without spaces."""

import re

# (characters of a script written without spaces, its characters per word)
_NO_SPACE = [
    (re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"), 1.7),  # Han (Chinese; kanji in Japanese)
    (re.compile("[\u3040-\u30ff\u31f0-\u31ff]"), 2.0),  # Hiragana, Katakana
    (re.compile("[\u0e00-\u0e7f]"), 4.0),  # Thai (with its vowel and tone marks)
    (re.compile("[\u0e80-\u0eff]"), 4.0),  # Lao
    (re.compile("[\u1780-\u17ff\u19e0-\u19ff]"), 5.0),  # Khmer
    (re.compile("[\u1000-\u109f\uaa60-\uaa7f]"), 4.5),  # Myanmar
]
_ANY_NO_SPACE = re.compile("|".join(p.pattern for p, _ in _NO_SPACE))
_WORD = re.compile(r"\w+", re.UNICODE)


def word_count(text: str) -> int:
    """Words in `text`, estimated from characters where its script puts no spaces between words."""
    if not _ANY_NO_SPACE.search(text):
        return _spaced_words(text)
    words = 0.0
    for pattern, per_word in _NO_SPACE:
        found = len(pattern.findall(text))
        if found:
            words += found / per_word
            text = pattern.sub(" ", text)
    return round(words + _spaced_words(text))


def _spaced_words(text: str) -> int:
    # Space-separated pieces holding a letter or digit: `\w+` alone would split Devanagari, Bengali... at
    # their vowel signs, which are marks, not letters.
    return sum(1 for piece in text.split() if _WORD.search(piece))


def tokens(text: str) -> list:
    """Lower-cased words, with each character of a script without spaces as a token of its own."""
    text = text.lower()
    if _ANY_NO_SPACE.search(text):
        text = _ANY_NO_SPACE.sub(lambda m: f" {m.group()} ", text)
    return _WORD.findall(text)

"""Quality checks a task declares in its YAML, beyond the schema: answers that parse and fit the
schema can still be wrong in meaning. Each check is a named kind with parameters:

    checks:
      - {check: min_words, fields: [positive_document], words: num_words, ratio: 0.5}  # a number, or an attribute (if set)
      - {check: language, fields: {S1: source_language, S2: target_language}}        # field: the attribute naming its language
      - {check: script, fields: {S2: target_language}}     # written in the script of its language (Han, Cyrillic...)
      - {check: distinct, fields: [S1, S2, S3], near: 0.9}    # pairwise different, not near duplicates (word Jaccard)
      - {check: distinct, fields: [input, positive_document], contained: true}   # ... nor one copied into the other
      - {check: not_contained, needles: [label], fields: [input_text]}   # a needle field's text is not inside these
      - {check: not_copied, fields: [query], source: passage, words: 8}  # no run of 8 words of an attribute
      - {..., name: label_in_text, reask: false}              # optional: the name in rejects, and no re-ask
      - {check: echo, fields: [S1]}     # and placeholder, prose, meta, length, label: see synthkit/spec/degenerate.py

A failing answer is re-asked with the reason (unless `reask: false`) and, once attempts run out,
rejected with the check's name."""

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from synthkit.core.errors import UserError
from synthkit.core.review import CheckFailure
from synthkit.spec import degenerate, langid
from synthkit.spec.langid import check as check_language
from synthkit.spec.langid import language_name
from synthkit.spec.script import script_reason
from synthkit.spec.text import tokens, word_count

_NUMBER = re.compile(r"\d+")
_ARTICLES = frozenset({"a", "an", "the"})


def _template(words: list) -> str:
    """A text's words without articles, its numbers as #: "an 11th item" and "a 19th item" are one template."""
    return " ".join(_NUMBER.sub("#", w) for w in words if w not in _ARTICLES)


# distinct with contained: a field whose words (at least this many) all appear, in order, inside another field
# copies it ("an input copied into a longer positive"). Fewer words can be a name the other rightly mentions.
CONTAINED_LEAST = 5
# not_copied: a field this long (in words) found whole inside its source is one of the source's sentences.
COPIED_WHOLE = 5


@dataclass(frozen=True)
class Check:
    name: str
    reask: bool
    test: Callable[[dict, dict], Optional[str]]  # (answer, attributes) -> what is wrong, or None
    degenerate: bool = False  # an answer that is not an answer (synthkit/spec/degenerate.py): counted apart
    kind: str = ""  # its kind (KINDS)

    def failure(self, answer: dict, attributes: dict) -> Optional[CheckFailure]:
        message = self.test(answer, attributes)
        return CheckFailure(self.name, message, self.reask) if message else None


def prepare(tasks, cache_dir: Optional[Path] = None) -> None:
    """Start loading what the tasks' checks need before their first answer, in the background: the language
    identifier's model (from its copy in `cache_dir`, made there the first time). A run calls it first thing; `ready`
    waits for it before the first request."""
    if any(check.kind == "language" for task in tasks for check in task.checks):
        langid.load_in_background(cache_dir)


def ready() -> None:
    """Wait for what `prepare` started loading: no answer's check waits for it with requests in flight."""
    langid.wait_loaded()


def build_checks(specs: Any, task: str, output_keys: list, attributes: list, prompt: str = "") -> list:
    if not specs:
        return []
    if not isinstance(specs, list):
        raise UserError(f"task {task}: checks must be a list of {{check: kind, ...}}")
    checks = []
    for spec in specs:
        kind = spec.get("check") if isinstance(spec, dict) else None
        if kind not in KINDS:
            raise UserError(f"task {task}: a check needs `check:` one of {', '.join(KINDS)} (got {spec!r})")
        params = {k: v for k, v in spec.items() if k not in ("check", "name", "reask")}
        fields = params.get("fields")
        if kind in ("language", "script") and not isinstance(fields, dict):
            raise UserError(
                f"task {task}: check {kind}: fields maps each field to the attribute naming its language, "
                f"e.g. {{S2: target_language}} (got {fields!r})"
            )
        named = list(fields) + list(params.get("needles") or []) if fields else []
        named += [params["text"]] if isinstance(params.get("text"), str) else []  # label: the text it labels
        for key in named:
            if key not in output_keys:
                raise UserError(f"task {task}: check {kind} names {key}, which is not an output key")
        try:
            if kind in degenerate.FACTORIES:
                context = degenerate.TaskContext(tuple(output_keys), tuple(attributes), prompt)
                test = degenerate.FACTORIES[kind](context, **params)
            else:
                test = KINDS[kind](**params)
        except TypeError as e:
            raise UserError(f"task {task}: check {kind}: {e}") from None
        for attribute in _attributes_used(kind, params):
            if attribute not in attributes:
                raise UserError(f"task {task}: check {kind} uses the attribute {attribute}, which the task lacks")
        if kind in ("not_copied", "about") and params["source"] not in attributes + output_keys:
            raise UserError(f"task {task}: check {kind}: source {params['source']} is no attribute or output key")
        checks.append(
            Check(spec.get("name", kind), bool(spec.get("reask", True)), test, kind in degenerate.FACTORIES, kind)
        )
    return checks


def _attributes_used(kind: str, params: dict) -> list:
    if kind in ("language", "script"):
        return list(params["fields"].values())
    if kind == "one_of":
        return [params["values"]]
    if kind == "about" and params.get("language") is not None:
        return [params["language"]]
    # min_words may name an attribute the task has only under a preset (num_words)
    return degenerate.attributes_used(kind, params)


def _words(text: str) -> list:
    return tokens(text)


def _min_words(fields: list, words, ratio: float = 1.0):
    def test(answer: dict, attributes: dict) -> Optional[str]:
        least = attributes.get(words) if isinstance(words, str) else words
        if least is None:
            return None
        if isinstance(least, str):  # "at least 50" asks for a minimum; "less than 10" does not
            match = _NUMBER.search(least)
            if not least.startswith("at least") or not match:
                return None
            least = int(match.group())
        need = int(least * ratio)
        for field in fields:
            have = word_count(answer[field])
            if have < need:
                return f"{field} has {have} words; it needs at least {need}"
        return None

    return test


def _language(fields: dict):
    # counts of synthkit.spec.langid.Verdict.outcome (ok, wrong, unchecked:<reason>) per field checked, for the card
    outcomes: Counter = Counter()

    def test(answer: dict, attributes: dict) -> Optional[str]:
        for field, attribute in fields.items():
            wanted = attributes[attribute]
            verdict = check_language(answer[field], wanted)
            outcomes[verdict.outcome] += 1
            if verdict.status == "wrong" and verdict.reason == "implausible":
                return (
                    f"{field} is hardly {wanted} (probability {verdict.wanted:.3f}); it reads as "
                    f"{language_name(verdict.found)} ({verdict.found}, {verdict.confidence:.2f})"
                )
            if verdict.status == "wrong":
                return (
                    f"{field} looks written in {language_name(verdict.found)} ({verdict.found}, "
                    f"confidence {verdict.confidence:.2f}), not in {wanted}"
                )
        return None

    test.outcomes = outcomes
    return test


def _script(fields: dict):
    def test(answer: dict, attributes: dict) -> Optional[str]:
        for field, attribute in fields.items():
            for text in degenerate.texts_of(answer[field]):
                reason = script_reason(text, str(attributes[attribute]))
                if reason:
                    return f"{field}: {reason}"
        return None

    return test


def _distinct(fields: list, near: float = 0.9, contained: bool = False):
    names = {f.lower() for f in fields}  # "the importance of S1" and "... of S2" are one text with its key swapped

    def test(answer: dict, attributes: dict) -> Optional[str]:
        words = {f: _words(answer[f]) for f in fields}
        sets = {f: set(words[f]) - names for f in fields}
        for i, a in enumerate(fields):
            for b in fields[i + 1 :]:
                union = sets[a] | sets[b]
                similarity = len(sets[a] & sets[b]) / len(union) if union else 1.0
                if similarity >= near:
                    return f"{a} and {b} are (near) duplicates (word overlap {similarity:.2f})"
                if contained:
                    inner, outer = sorted((a, b), key=lambda f: len(words[f]))
                    if word_count(answer[inner]) >= CONTAINED_LEAST and _inside(words[inner], words[outer]):
                        return f"{outer} copies {inner} whole ({len(words[inner])} words) instead of differing"
        # Three or more fields of one template with another number each ("there's an 11th item", "... a 19th ...");
        # two may differ by a number on purpose (a hard negative: "at 3 pm" vs "at 4 pm").
        if len(fields) >= 3 and len({len(words[f]) for f in fields}) == 1:  # one template: as many words
            templates = {_template(words[f]) for f in fields}
            if len(templates) == 1 and len(_PLAIN.findall(next(iter(templates)))) >= 2:
                return f"{', '.join(fields)} differ only in their numbers"
        return None

    return test


_PLAIN = re.compile(r"(?<!\S)[^\W\d_]+(?!\S)")  # a word of letters alone
_NUMBER = re.compile(r"\d+")
_ARTICLES = frozenset({"a", "an", "the"})


def _template(words: list) -> str:
    """A text's words without articles, its numbers as #: "an 11th item" and "a 19th item" are one template."""
    return " ".join(_NUMBER.sub("#", w) for w in words if w not in _ARTICLES)


def _inside(needle: list, haystack: list) -> bool:
    """Whether the words `needle` appear in a row, in order, in `haystack`."""
    return bool(needle) and f" {' '.join(needle)} " in f" {' '.join(haystack)} "


def _not_copied(fields: list, source: str, words: int = 8):
    """A field shares no run of `words` words with `source` (an attribute such as the passage, or another
    field), and is not one of its sentences whole."""
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise TypeError(f"words is a number of words in a row, such as 8 (got {words!r})")

    def test(answer: dict, attributes: dict) -> Optional[str]:
        origin = answer.get(source, attributes.get(source))
        if not isinstance(origin, str) or not origin:
            return None
        origin_words = _words(origin)
        runs = {tuple(origin_words[i : i + words]) for i in range(len(origin_words) - words + 1)}
        for field in fields:
            if not isinstance(answer[field], str):
                continue
            mine = _words(answer[field])
            if any(tuple(mine[i : i + words]) in runs for i in range(len(mine) - words + 1)):
                return f"{field} copies {words} words in a row from the {source}"
            if word_count(answer[field]) >= COPIED_WHOLE and _inside(mine, origin_words):
                return f"{field} is copied whole from the {source}"
        return None

    return test


def _not_contained(needles: list, fields: list):
    def test(answer: dict, attributes: dict) -> Optional[str]:
        for needle in needles:
            text = " ".join(_words(answer[needle]))
            if not text:
                continue
            for field in fields:
                if re.search(rf"(?<!\w){re.escape(text)}(?!\w)", " ".join(_words(answer[field]))):
                    return f"{field} contains {needle} ({answer[needle]!r})"
        return None

    return test


# Words too common to show what a query is about (English: the prompts' language, and most corpora's)
_COMMON = frozenset(
    "what which that this these those with from have does about when where there their into your they were been "
    "will would could should than then them some such other more most also only very just over under after before "
    "between while because being each many much make made like find show tell give know need want please".split()
)


def _stems(text: str) -> set:
    """The content words of `text`, each cut to its first five letters (plants ~ plant, photosynthetic ~
    photosynthesis): words of four letters or more that are not common, and numbers."""
    return {w[:5] for w in _words(text) if (len(w) >= 4 and w not in _COMMON) or w.isdigit()}


# A passage is read again for each re-ask of its row and each step that asks about it
@functools.lru_cache(maxsize=256)
def _source_stems(text: str) -> frozenset:
    return frozenset(_stems(text))


@functools.lru_cache(maxsize=256)
def _written_in(text: str, language: str) -> bool:
    return check_language(text, language).status == "ok"


def _about(fields: list, source: str, language: Optional[str] = None, same: str = "the language of the passage"):
    """Each field shares a content word with `source` (the passage it must be about): a query about JSON, the task
    or itself shares none. Judged only where the field is in the source's language (the attribute `language` is
    `same`, or names the language the source is in): a query in another language shares no word with its passage
    by nature."""

    def test(answer: dict, attributes: dict) -> Optional[str]:
        origin = answer.get(source, attributes.get(source))
        if not isinstance(origin, str) or not origin:
            return None
        asked = str(attributes.get(language, "")).strip() if language is not None else same
        if asked.lower() != same.lower() and not _written_in(str(origin), asked):
            return None
        stems = _source_stems(str(origin))
        for field in fields:
            mine = _stems(answer[field]) if isinstance(answer[field], str) else set()
            if mine and not mine & stems:
                return f"{field} shares no word with the {source} it is about; ask about what the {source} says"
        return None

    return test


def _one_of(fields: list, values: str):
    """Each field is one of the items the prompt offered (the list attribute `values`), as written there."""

    def said(text) -> str:
        return " ".join(str(text).lower().split()).strip(" .")

    def test(answer: dict, attributes: dict) -> Optional[str]:
        offered = attributes.get(values)
        if not isinstance(offered, (list, tuple)):
            return None
        choices = {said(v) for v in offered}
        for field in fields:
            if isinstance(answer[field], str) and said(answer[field]) not in choices:
                return f"{field} ({answer[field][:60]!r}) is none of the {values} offered; choose one as written"
        return None

    return test


KINDS = {
    "min_words": _min_words,
    "language": _language,
    "script": _script,
    "distinct": _distinct,
    "not_contained": _not_contained,
    "not_copied": _not_copied,
    "one_of": _one_of,
    "about": _about,
    **degenerate.FACTORIES,  # answers that are not answers: echoes, placeholders, lengths, meta-word labels
}

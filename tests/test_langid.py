"""The language check: wrong languages rejected where the identifier is confident (short texts too), correct
texts never rejected, and every language name synthkit offers has a code for the check and the card."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from synthkit.spec.checks import build_checks
from synthkit.spec.langid import (
    CONFIDENT,
    check,
    decide,
    has_model,
    language_code,
    language_name,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = [json.loads(line) for line in (ROOT / "tests/data/langid_sample.jsonl").read_text("utf-8").splitlines()]
SPANISH = [
    "¿Dónde está la estación?",
    "Mañana vamos a visitar a mis abuelos que viven en el pueblo.",
    "La energía solar se ha convertido en una de las fuentes más baratas de electricidad.",
]


@pytest.mark.parametrize("text", ["¿Dónde está la estación?", "¿Cuánto cuesta?"])
def test_spanish_phrase_labelled_german_is_wrong(text):
    assert check(text, "German").status == "wrong"


@pytest.mark.parametrize("text", ["Herzlichen Glückwunsch", "Entschuldigung bitte", "Wie spät ist es?"])
def test_short_german_labelled_english_is_wrong(text):
    verdict = check(text, "English")
    assert (verdict.status, verdict.found) == ("wrong", "de")


@pytest.mark.parametrize("text", ["Schlechte Musik", "Mauvaise musique", "Доброе утро"])
def test_short_phrases_in_another_language_are_wrong_by_the_relative_rule(text):
    # norm_probs gives each of these under 0.8 (Schlechte Musik: lb 0.72, de 0.21). Not all: "Guten Morgen" gets
    # de 0.16, under the floor, and stays unchecked.
    assert check(text, "English").status == "wrong"
    assert check("Guten Morgen", "English").status == "unchecked"


def test_the_relative_rule_needs_a_short_text_and_a_floor():
    # English above IMPLAUSIBLE throughout: only the relative rule can call these wrong
    ranked = [("de", 0.55), ("nl", 0.2), ("en", 0.025)]
    assert decide(ranked, "English", short=True).status == "wrong"
    assert decide(ranked, "English", short=False).status == "unchecked"  # a long text must be confident
    assert decide([("de", 0.45), ("en", 0.021)], "English", short=True).status == "unchecked"  # under the floor
    assert decide([("de", 0.55), ("en", 0.05)], "English", short=True).status == "unchecked"  # not 20 x


def test_japanese_in_kanji_alone_is_not_called_chinese():
    assert check("政治", "Japanese").status == "unchecked"
    assert check("政治", "Chinese").status != "wrong"
    assert check("我们明天早上坐火车去北京看望爷爷奶奶。", "Japanese").status == "unchecked"
    assert check("明日の朝、電車で京都へ行きます。", "Chinese").status == "wrong"


# Galician: the identifier models it, so Spanish labelled Galician is rejected; Portuguese is not (gl and pt
# are confused on sentences: "Onte fomos ao mercado..." scores pt 0.50, gl 0.49).
@pytest.mark.parametrize(
    "name",
    ["Sanskrit", "Yiddish", "Galician", "Czech", "Sindhi", "Sundanese", "Hindi Romanize", "Catalan", "Portuguese"],
)
@pytest.mark.parametrize("text", SPANISH)
def test_spanish_under_another_name_is_wrong(text, name):
    verdict = check(text, name)
    assert (verdict.status, verdict.found) == ("wrong", "es") and verdict.confidence >= CONFIDENT


def test_no_correctly_labelled_sample_text_is_rejected():
    rejected = [(r["lang"], r["text"]) for r in SAMPLE if check(r["text"], r["lang"]).status == "wrong"]
    assert rejected == []


def test_correct_texts_are_ok_in_many_languages_short_ones_too():
    modelled = [r for r in SAMPLE if has_model(r["lang"])]
    ok = {r["lang"] for r in modelled if r["kind"] == "phrase" and check(r["text"], r["lang"]).status == "ok"}
    assert (
        len(ok) >= 40
        and {
            "Spanish",
            "German",
            "Chinese (Simplified)",
            "Japanese",
            "Thai",
            "Hindi",
            "Arabic",
            "Russian",
            "Czech",
            "Slovak",
            "Portuguese",
            "Galician",
        }
        <= ok
    )
    assert all(check(r["text"], r["lang"]).status == "ok" for r in modelled if r["kind"] == "paragraph")


def test_unknowable_cases_are_unchecked_with_a_reason():
    assert check("Guten Morgen", "English").outcome == "unchecked:not_confident"  # too little to be sure
    assert check("גוט מאָרגן", "Yiddish").outcome == "unchecked:no_model"  # read as Hebrew, Yiddish's neighbour
    assert check("ganz egal", "Klingon").outcome == "unchecked:unknown_name"
    assert check("1234 5678", "English").outcome == "unchecked:no_language"
    assert check("S1 79426749ac00 9591 5139 1208 4840", "English").outcome == "unchecked:no_language"


def test_a_cluster_splitting_its_probability_is_still_confident():
    verdict = decide([("mr", 0.6), ("gom", 0.35), ("en", 0.05)], "English")
    assert (verdict.status, verdict.found) == ("wrong", "mr") and verdict.confidence == pytest.approx(0.95)
    assert decide([("es", 0.75), ("en", 0.25)], "English").status == "unchecked"


def test_the_check_reports_what_it_found_and_counts_outcomes():
    (language,) = build_checks(
        [{"check": "language", "fields": {"S1": "source_language", "S2": "target_language"}}],
        "bitext",
        ["S1", "S2"],
        ["source_language", "target_language"],
    )
    attributes = {"source_language": "English", "target_language": "Sanskrit"}
    failure = language.failure({"S1": "The weather is nice today.", "S2": SPANISH[1]}, attributes)
    assert failure.message.startswith("S2 looks written in Spanish (es, confidence 0.9")
    assert failure.message.endswith(", not in Sanskrit")
    assert language.failure({"S1": "1234", "S2": "रामः वनं गच्छति सीतया लक्ष्मणेन च सह।"}, attributes) is None
    assert language.test.outcomes == {"ok": 2, "wrong": 1, "unchecked:no_language": 1}


def _language_lists() -> dict:
    conf = OmegaConf.load(ROOT / "conf/languages.yaml")
    return OmegaConf.to_container(conf, resolve=True)["languages"]


def test_every_offered_language_name_has_codes_for_the_check_and_the_card():
    lists = _language_lists()
    names = set(lists["xlmr"]) | set(lists["paper"]) | set(lists["e5_mix"]["values"])
    assert set(lists["e5_mix"]["weights"]) <= set(lists["paper"])
    assert all(language_code(name) for name in names), [n for n in names if not language_code(n)]
    for name in names:
        tag = language_code(name)[0]
        assert len(tag) in (2, 3) and tag.isalpha() and tag.islower(), (name, tag)
        if has_model(name):
            assert language_name(tag) in names


def test_the_lists_use_the_spec_names():
    lists = _language_lists()
    variants = {
        "Bengali Romanize",
        "Burmese zawgyi font",
        "Hindi Romanize",
        "Tamil Romanize",
        "Telugu Romanize",
        "Urdu Romanize",
    }
    assert len(lists["xlmr"]) == 100 and len(lists["paper"]) == 93
    chinese = {"Chinese (Simplified)", "Chinese (Traditional)"}
    assert set(lists["paper"]) == (set(lists["xlmr"]) - variants - chinese) | {"Chinese"}


def test_sweeps_name_languages_as_the_lists_do():
    """One name per language across the lists and the packaged sweeps (no "Chinese" here and
    "Chinese (Simplified)" there), so a sweep's cells group with a mixture's rows."""
    known = set(_language_lists()["paper"])
    swept = 0
    for path in sorted((ROOT / "conf/sweep").glob("*.yaml")):
        params = OmegaConf.load(path).get("hydra", {}).get("sweeper", {}).get("params", {})
        for key, values in params.items():
            if key.endswith("language"):
                names = [v.strip() for v in str(values).split(",")]
                assert set(names) <= known, (path.name, set(names) - known)
                swept += len(names)
    assert swept >= 28


def test_a_check_reads_the_same_verdict_as_the_whole_ranking():
    """check() reads the likeliest code and the few probabilities it needs, not the sorted ranking: every verdict
    is the one decide() gives on rank()'s full list, for wrong, close and unknown names alike."""
    from synthkit.spec.langid import rank

    texts = [r["text"] for r in SAMPLE[::4]] + SPANISH + ["S1 3f9a 4711", "Einstein", "政治", "sport", "aap kaise ho"]
    names = ["English", "German", "Spanish", "Serbian", "Japanese", "Hindi Romanize", "Sindhi", "Klingon", "de"]
    for text in texts:
        ranked = rank(text)
        for name in names:
            assert check(text, name) == check(text, name, ranked=ranked), (text, name)


def _task_with(specs: list):
    class Task:
        checks = build_checks(specs, "t", ["S1"], ["language"])

    return Task()


def test_the_identifier_loads_in_the_background_before_the_first_check(monkeypatch):
    from synthkit.spec import langid
    from synthkit.spec.checks import prepare, ready

    monkeypatch.setattr(langid, "_model", {})
    prepare([_task_with([{"check": "min_words", "fields": ["S1"], "words": 1}])])
    assert "thread" not in langid._model  # no language check: nothing to load
    prepare([_task_with([{"check": "language", "fields": {"S1": "language"}}])])
    thread = langid._model["thread"]
    assert thread.name == "synthkit-langid-load"
    prepare([_task_with([{"check": "language", "fields": {"S1": "language"}}])])
    assert langid._model["thread"] is thread  # once
    ready()
    assert not thread.is_alive() and "identifier" in langid._model
    assert check("Die Regierung hat heute neue Maßnahmen angekündigt.", "German").status == "ok"


def test_the_model_is_unpacked_once_into_the_cache_dir(tmp_path, monkeypatch):
    """The wheel's LZMA-packed model is unpacked the first time (half a second), then mapped from the cache dir."""
    import py3langid.modelio

    from synthkit.spec import langid, langid_model

    first = langid_model.load(tmp_path)
    (copy,) = (tmp_path / "langid").iterdir()
    monkeypatch.setattr(py3langid.modelio, "load_model", lambda path: pytest.fail("unpacked the wheel again"))
    second = langid_model.load(tmp_path)
    texts = [r["text"] for r in SAMPLE[::16]] + SPANISH
    assert [second.rank(t) for t in texts] == [first.rank(t) for t in texts]
    monkeypatch.setattr(langid, "_model", {})  # a run's check, on the mapped copy
    langid.identifier(tmp_path)
    assert check(SPANISH[1], "Spanish").status == "ok" and check(SPANISH[1], "German").status == "wrong"
    assert sorted(p.name for p in copy.iterdir()) == [
        "model.json", "nextmove.npy", "output.npy", "pc.npy", "ptc.npy", "row.npy"
    ]  # fmt: skip


def test_a_damaged_copy_is_unpacked_again_and_an_unwritable_cache_dir_is_passed_by(tmp_path):
    from synthkit.spec import langid_model

    reference = langid_model.load(None)
    langid_model.load(tmp_path)
    (copy,) = (tmp_path / "langid").iterdir()
    ptc = copy / "ptc.npy"
    whole = ptc.stat().st_size
    ptc.write_bytes(ptc.read_bytes()[: whole // 2])  # cut short (a full disk, a kill)
    again = langid_model.load(tmp_path)
    assert again.rank(SPANISH[2]) == reference.rank(SPANISH[2])
    assert ptc.stat().st_size == whole  # unpacked and written whole again
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert langid_model.load(blocked).rank(SPANISH[0]) == reference.rank(SPANISH[0])

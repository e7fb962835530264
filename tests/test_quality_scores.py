"""synthkit.quality: each flag proven on planted rows, judged by a tiny model2vec model made here
(a word-level tokenizer over seven topics, one axis per topic plus one per word), saved with
model2vec's own save_pretrained and loaded by path through load_embedder, as users load theirs."""

import json

import pytest
from helpers import tiny_static_model

from synthkit.core.config import ScoreConfig
from synthkit.errors import UserError
from synthkit.quality.embedder import load_embedder
from synthkit.quality.mining import mine_hard_negatives
from synthkit.quality.score import records, score_rows, summary
from synthkit.results.export import Example
from synthkit.results.rundir import RunDir

TOPICS = {
    "cats": "cat kitten feline purr",
    "weather": "rain storm cloud thunder",
    "baking": "bread bake oven flour",
    "music": "guitar song chord melody",
    "finance": "bank loan money credit",
    "sport": "ball goal match team",
    "garden": "plant seed soil flower",
}
EXPORTS = {
    "text_retrieval": {"query": "user_query", "positive": "positive_document", "negative": "hard_negative_document"},
    "short_text_matching": {"query": "input", "positive": "positive_document"},
}
# (query, positive, negative): the planted cases first, then rows that should raise no flag.
PLANTED = {
    "paraphrased negative": ("cat purr", "kitten feline cat", "cat feline kitten"),
    "unrelated negative": ("rain storm", "storm cloud rain", "ball goal"),
    "query of another row's positive": ("bread oven flour", "guitar melody", "song chord melody"),
    "that positive": ("bake bread", "bake bread oven flour", "oven plant"),
    "first of two": ("bank loan money", "credit bank loan", "bank ball"),
    "reworded repeat": ("money loan bank", "loan credit money", "money song"),
    "clean sport": ("team match", "ball goal team match", "team song"),
    "clean garden": ("seed soil", "plant flower seed soil", "soil money"),
    "clean weather": ("thunder cloud", "thunder cloud storm", "cloud bread oven"),
}
NAMES = list(PLANTED)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # "nothing": a query scoring below 0 against every document.
    path = tmp_path_factory.mktemp("model") / "tiny-static"
    return tiny_static_model(path, list(TOPICS.values()), extra_vectors={"nothing": [-1.0]})


@pytest.fixture(scope="module")
def embedder(model_dir):
    return load_embedder("model2vec", str(model_dir), batch_size=4)


def planted_rows():
    rows = [
        {"row": i, "cell": "text_retrieval/English", "task_type": "text_retrieval", "user_query": q,
         "positive_document": p, "hard_negative_document": n, "attributes": {"language": "English"}}
        for i, (q, p, n) in enumerate(PLANTED.values())
    ]  # fmt: skip
    # The same query under another task type is no near duplicate: types are judged apart.
    rows.append({"row": 0, "task_type": "short_text_matching", "input": "bank loan money",
                 "positive_document": "money credit", "attributes": {}})  # fmt: skip
    rows.append({"row": 0, "task_type": "brainstorm", "tasks": ["no export block"]})
    return rows


def flags_by_name(scores):
    by_row = {r["row"]: set(r["flags"]) for r in records(scores) if r["task_type"] == "text_retrieval"}
    return {name: by_row[i] for i, name in enumerate(NAMES)}


def test_each_flag_fires_on_its_planted_row_only(embedder):
    # batch_size 3 makes the rows of one task type span several encoding batches.
    flags = flags_by_name(score_rows(planted_rows(), EXPORTS, embedder, ScoreConfig(batch_size=3)))
    assert "false_negative" in flags["paraphrased negative"]
    assert "easy_negative" in flags["unrelated negative"]
    assert "inconsistent" in flags["query of another row's positive"]
    assert "near_duplicate" in flags["reworded repeat"]
    for name in ("that positive", "first of two", "clean sport", "clean garden", "clean weather"):
        assert flags[name] == set(), name
    assert flags["paraphrased negative"] == {"false_negative"}
    assert flags["unrelated negative"] == {"easy_negative"}
    assert flags["reworded repeat"] == {"near_duplicate"}


def test_a_fixed_easy_margin_replaces_the_in_batch_rule(embedder):
    margins = {n: r["margin"] for n, r in zip(NAMES, records(score_rows(planted_rows(), EXPORTS, embedder)))}
    for threshold in (margins["unrelated negative"] - 1e-3, 0.1, 0.5):
        flags = flags_by_name(score_rows(planted_rows(), EXPORTS, embedder, ScoreConfig(easy_margin=threshold)))
        easy = {n for n, f in flags.items() if "easy_negative" in f}
        # margins are rounded to 4 places in the records
        assert easy == {n for n, m in margins.items() if m is not None and m >= threshold + 1e-4}, threshold
    assert (
        "easy_negative"
        in flags_by_name(
            score_rows(planted_rows(), EXPORTS, embedder, ScoreConfig(easy_margin=margins["unrelated negative"] - 1e-3))
        )["unrelated negative"]
    )


def test_thresholds_move_the_flags(embedder):
    lenient = ScoreConfig(false_negative_ratio=1.01, top_k=20, near_duplicate=1.01)
    flags = flags_by_name(score_rows(planted_rows(), EXPORTS, embedder, lenient))
    assert "false_negative" not in flags["paraphrased negative"]
    assert "inconsistent" not in flags["query of another row's positive"]
    assert "near_duplicate" not in flags["reworded repeat"]


def test_scores_file_has_one_line_per_row_keyed_by_identity(embedder, model_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in planted_rows()), encoding="utf-8")
    run = RunDir(tmp_path)
    scores = score_rows(run.raw_rows(), EXPORTS, embedder)
    result = summary(scores)
    run.write_scores(records(scores), result)
    lines = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(PLANTED) + 1
    assert lines[0]["row"] == 0 and lines[0]["cell"] == "text_retrieval/English"
    assert lines[-1] == {**lines[-1], "row": 0, "task_type": "short_text_matching", "neg_sim": None, "flags": []}
    assert "cell" not in lines[-1]
    repeat = lines[NAMES.index("reworded repeat")]
    assert repeat["dup_of"] == {"row": NAMES.index("first of two"), "cell": "text_retrieval/English",
                                "task_type": "text_retrieval"}  # fmt: skip
    assert repeat["dup_sim"] >= 0.95
    assert all(line["margin"] == pytest.approx(line["pos_sim"] - line["neg_sim"], abs=2e-4) for line in lines[:-1])
    assert json.loads((tmp_path / "scores_summary.json").read_text()) == result
    assert result["rows"] == len(PLANTED) + 1 and result["skipped"] == 1
    retrieval = result["task_types"]["text_retrieval"]
    assert retrieval["flags"]["near_duplicate"] == {"count": 1, "share": round(1 / len(PLANTED), 4)}
    for flag in ("false_negative", "easy_negative", "inconsistent"):
        assert retrieval["flags"][flag]["count"] == sum(flag in line["flags"] for line in lines[:-1]) > 0
    assert result["task_types"]["short_text_matching"]["flags"]["false_negative"] == {"count": 0, "share": None}
    diversity = retrieval["diversity"]["English"]
    assert diversity["queries"] == len(PLANTED) and 0 < diversity["mean_cosine"] < 0.5
    assert 1 < diversity["vendi"] <= len(PLANTED)


def test_diversity_is_lower_for_repeated_queries(embedder):
    rows = [{"row": i, "task_type": "short_text_matching", "input": q, "positive_document": "credit"}
            for i, q in enumerate(["cat kitten", "kitten cat", "cat purr kitten", "rain storm", "bank loan", "ball goal"])]  # fmt: skip
    varied = summary(score_rows(rows[2:], EXPORTS, embedder))["task_types"]["short_text_matching"]["diversity"]["-"]
    samey = summary(score_rows(rows[:3], EXPORTS, embedder))["task_types"]["short_text_matching"]["diversity"]["-"]
    assert samey["mean_cosine"] > varied["mean_cosine"] and samey["vendi"] < varied["vendi"]


def test_mined_negatives_never_hold_the_positive(embedder):
    examples = [Example("text_retrieval", "", q, p, n, "normal") for q, p, n in PLANTED.values()]
    # A negative identical to its row's positive, and a positive repeated by another row.
    examples.append(Example("text_retrieval", "", "rain cloud", "storm cloud rain", "storm cloud rain ", "normal"))
    examples.append(Example("other", "", "cat", "cat purr", None, "normal"))
    # A positive scoring below 0: 95% of its score is above it, so only its identity keeps it out.
    examples.append(Example("text_retrieval", "", "nothing", "kitten feline cat", "bank", "normal"))
    mined = mine_hard_negatives(embedder, examples, k=3)
    assert len(mined) == len(examples)
    for example, m in zip(examples, mined):
        assert example.positive.strip() not in {n.strip() for n in m.negatives}
        assert all(s < 0.95 * m.pos_score for s in m.scores)
        assert m.scores == sorted(m.scores, reverse=True) and len(m.negatives) == len(m.scores) <= 3
    paraphrased = mined[NAMES.index("paraphrased negative")]
    assert "cat feline kitten" not in paraphrased.negatives  # scores as high as the positive itself
    weather = mined[NAMES.index("unrelated negative")]
    assert weather.negatives[0] == "thunder cloud storm"  # the nearest document that is not the positive
    assert mined[-2].negatives == []  # a task type with one document has nothing to mine


def test_a_wrong_model_path_is_one_line_naming_embedder_model(tmp_path):
    for model in (str(tmp_path / "no-such-model"), str(tmp_path)):  # missing; a directory holding no model
        with pytest.raises(UserError) as error:
            load_embedder("model2vec", model)
        message = str(error.value)
        assert "\n" not in message and f"embedder.model={model}" in message and "synthkit-embed[quality]" in message
    with pytest.raises(UserError, match="embedder.backend=faiss is not one of"):
        load_embedder("faiss", str(tmp_path))

"""`synthkit evaluate` and `evaluate=true` without torch: the parts that train nothing (decontamination, the paired
bootstrap, reading BEIR sets, the sweep's Δ columns) and every bad input that must be one line, exit != 0, with
nothing written over, before any model is loaded. Training and scoring for real: tests/test_evaluate_torch.py."""

import json
import os
import sys

import numpy as np
import pytest
from evaluation_worlds import INSTRUCTION, topic_beir_set, topic_rows, write_run
from helpers import assert_one_line_error, run_synthkit, server_llm

from synthkit.core.compose import compose
from synthkit.core.config import DecontaminationConfig, check_bounds
from synthkit.core.errors import UserError
from synthkit.core.record import Row
from synthkit.results.evaluation.decontamination import decontaminate, jaccard_matches
from synthkit.results.evaluation.report import delta_columns
from synthkit.results.evaluation.sets import load_beir
from synthkit.results.evaluation.statistics import compare, paired_bootstrap, verdict
from synthkit.results.export import Example
from synthkit.results.sweep import merge_sweep

EARLIER = '{"earlier": "evaluation"}'


def example(query, positive="p", negative=None):
    return Example("text_retrieval", "i", query, positive, negative, "only_1neg")


def test_evaluate_true_is_spelt_like_judge_true_and_its_settings_have_bounds():
    cfg = compose("evaluate=true", "evaluate.sets=[a,heldout]", "evaluate.ablate=task_type")
    assert cfg.evaluate.enabled is True and list(cfg.evaluate.sets) == ["a", "heldout"]
    assert compose().evaluate.enabled is False
    for bad, said in (
        ("evaluate.batch_size=1", "evaluate.batch_size=1 must be at least 2"),
        ("evaluate.heldout_share=0", "evaluate.heldout_share=0.0 must be in (0, 1]"),
        ("evaluate.decontamination.jaccard=1.5", "evaluate.decontamination.jaccard=1.5 must be in (0, 1]"),
    ):
        with pytest.raises(UserError) as error:
            check_bounds(compose(bad))
        assert str(error.value) == said
    with pytest.raises(UserError, match="evaluate.ablate"):
        compose("evaluate.ablate=language")


def test_decontamination_leaves_out_copies_of_evaluation_queries_and_says_why():
    queries = {
        (
            "set",
            "long",
        ): "how do i replace the water pump on a two thousand and eight honda civic with a manual gearbox",
        ("set", "short"): "best sourdough starter ratio",
    }
    rows = [
        example("replace the water pump on a two thousand and eight honda civic with a manual"),  # a 13-gram
        example("ratio sourdough best starter"),  # reordered: Jaccard 1
        example("what is the best sourdough starter ratio for rye"),  # holds the short query whole
        example("unrelated", "see: " + queries["set", "long"]),  # copied into a positive
        example("unrelated too", "p", "Best sourdough starter ratio!"),  # a short query in a negative: too generic
        example("sourdough starter"),  # Jaccard 0.5: kept
        example("water pump replacement"),  # kept
    ]
    kept, removed = decontaminate(rows, queries, DecontaminationConfig())
    assert [r.rule for r in removed] == ["13-gram", "jaccard 1.00", "whole query", "copied in positive/negative"]
    assert [(r.set_name, r.query_id) for r in removed] == [
        ("set", "long"),
        ("set", "short"),
        ("set", "short"),
        ("set", "long"),
    ]
    assert kept == rows[4:]
    # The thresholds are settings: a looser Jaccard takes "sourdough starter" (2 of 4 words) for a copy, 2-grams
    # take "water pump replacement" for one.
    kept, _ = decontaminate(rows, queries, DecontaminationConfig(jaccard=0.5))
    assert kept == [rows[4], rows[6]]
    kept, _ = decontaminate(rows, queries, DecontaminationConfig(ngram=2, min_words=2))
    assert kept == [rows[4]]


def test_jaccard_matches_find_the_best_match_at_the_threshold_exactly():
    train = [{"a", "b", "c", "d"}, {"x", "y"}, {"a", "b", "c", "d", "e"}]
    evals = [{"a", "b", "c", "d", "f"}, {"a", "b", "c", "d", "e", "g"}]
    assert jaccard_matches(train, evals, 0.8) == {0: (0, 0.8), 2: (1, 5 / 6)}  # 4 of 5 words is 0.8, not 0.7999
    assert jaccard_matches(train, evals, 0.81) == {2: (1, 5 / 6)}
    assert jaccard_matches([], evals, 0.8) == {} and jaccard_matches(train, [set()], 0.8) == {}


def test_the_paired_bootstrap_finds_a_real_gain_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(size=200)
    assert paired_bootstrap(base, base, 500) == (0.0, 0.0, 0.0)
    delta, low, high = paired_bootstrap(base, base + 0.05 + rng.normal(0, 0.1, 200), 2000, 1)
    assert low < delta < high and low > 0 and high - low < 0.06
    noise = base + rng.normal(0, 0.1, 200)
    delta, low, high = paired_bootstrap(base, noise, 2000, 1)
    assert low < 0 < high and verdict(low, high) == "no measurable change"
    assert paired_bootstrap(base, base + 0.05, 100, 3) == paired_bootstrap(base, base + 0.05, 100, 3)  # seeded
    with pytest.raises(ValueError):
        paired_bootstrap([], [], 100)


def test_a_gain_one_seed_reverses_is_no_measurable_change():
    rng = np.random.default_rng(1)
    base = rng.uniform(size=300)
    gains = [base + 0.2 + rng.normal(0, 0.05, 300), base + 0.25 + rng.normal(0, 0.05, 300)]
    result = compare(base, gains, [0, 1], 1000)
    assert result["verdict"] == "better" and result["ci_low"] > 0 and len(result["seeds"]) == 2
    assert result["seed_spread"]["min"] < result["seed_spread"]["max"] and result["seed_spread"]["sd"] > 0
    mixed = compare(base, [base + 0.3, base - 0.01], [0, 1], 1000)  # the pooled mean gains; one seed loses
    assert mixed["ci_low"] > 0 and mixed["verdict"] == "no measurable change"
    assert compare(base, [base - 0.1], [7], 1000)["verdict"] == "worse"
    assert compare(base, [base + 0.1], [7], 1000)["seed_spread"]["sd"] is None  # one seed: no spread measured


@pytest.fixture
def beir(tmp_path):
    return topic_beir_set(tmp_path / "topics", topics=3, docs=2, queries=2)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "queries.jsonl").unlink(), "lacks queries.jsonl"),
        (lambda f: (f / "qrels" / "test.tsv").unlink(), "lacks qrels/test.tsv"),
        (lambda f: (f / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{oops\n'), "corpus.jsonl:2: not a JSON"),
        (lambda f: (f / "queries.jsonl").write_text('{"_id": "q1"}\n'), "queries.jsonl:1: not a JSON object"),
        (lambda f: (f / "queries.jsonl").write_text('[1, 2]\n'), "queries.jsonl:1: not a JSON object"),
        (lambda f: (f / "queries.jsonl").write_text('{"_id": true, "text": "x"}\n'), "queries.jsonl:1:"),
        (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0-0\td0-0\thigh\n"), "test.tsv:2: not"),
        (lambda f: (f / "qrels" / "test.tsv").write_text("q0-0 d0-0 1\n"), "test.tsv:1: not"),
        (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0-0\tnope\t1\n"), "pairs no query"),
        (lambda f: (f / "qrels" / "test.tsv").write_bytes(b"\xff\xfe\x00"), "test.tsv:1: not"),
        (lambda f: ((f / "corpus.jsonl").unlink(), os.mkfifo(f / "corpus.jsonl")), "holds a FIFO (named pipe) as corpus"),
    ],
)  # fmt: skip
def test_a_broken_beir_set_is_one_line(beir, damage, message):
    damage(beir)
    with pytest.raises(UserError) as error:
        load_beir(str(beir))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_beir_sets_are_read_as_beir_and_mteb_write_them(beir):
    with open(beir / "corpus.jsonl", "a") as f:
        f.write(json.dumps({"_id": 7, "title": "A title", "text": "body"}) + "\n")
    with open(beir / "qrels" / "test.tsv", "a") as f:
        f.write("q0-0\tghost\t1\nq1-0\t7\t0\nq2-1\tQ0\t7\t2\n")  # not in the corpus; a zero grade; TREC's 4 columns
    loaded = load_beir(str(beir))
    assert loaded.corpus["7"] == "A title body" and loaded.dropped_qrels == 1
    assert loaded.qrels["q2-1"] == {"d2-0", "d2-1", "7"} and "7" not in loaded.qrels["q1-0"]
    assert loaded.query_texts(None)["q0-0"].startswith(f"Instruct: {INSTRUCTION}\nQuery: q0x")
    # A set whose queries carry no instruction gets evaluate.instruction (and none: the bare query).
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q0-0", "text": "q0x1"}) + "\n")
    assert load_beir(str(beir)).query_texts("Find it") == {"q0-0": "Instruct: Find it\nQuery: q0x1"}
    assert load_beir(str(beir)).query_texts(None) == {"q0-0": "q0x1"}


@pytest.fixture
def world(tmp_path, beir):
    run = write_run(tmp_path / "run", topic_rows(3, topics=3))
    (run / "evaluation.json").write_text(EARLIER)  # an earlier evaluation: a refusal must leave it as it was
    return run, beir


def evaluate(run, *overrides, cwd):
    return run_synthkit("evaluate", str(run), *overrides, cwd=cwd, card=True)


def assert_refused(result, run, *needles):
    assert_one_line_error(result, *needles)
    assert (run / "evaluation.json").read_text() == EARLIER


def test_bad_sets_are_one_line_and_nothing_is_written_over(world, tmp_path):
    run, beir = world
    for sets, said in (
        ("[]", "evaluate.sets is empty"),
        (f"[{tmp_path / 'nothing'}]", "is not a folder"),
        ("[nothing]", "evaluation set nothing is not a folder"),
        (f"[{run}]", "lacks corpus.jsonl"),
        (f"[{beir},{beir}]", "names"),
    ):
        assert_refused(evaluate(run, f"evaluate.sets={sets}", cwd=tmp_path), run, said)
    (beir / "corpus.jsonl").write_text("not json\n")
    assert_refused(evaluate(run, f"evaluate.sets=[{beir}]", cwd=tmp_path), run, "corpus.jsonl:1: not a JSON object")


def test_a_hub_set_that_cannot_be_reached_is_one_line(world, tmp_path):
    run, _ = world
    # A process of its own: the Hub libraries read HF_HUB_OFFLINE once, when imported.
    result = run_synthkit("evaluate", str(run), "evaluate.sets=[nobody/nothing]", cwd=tmp_path,
                          env={"HF_HUB_OFFLINE": "1"}, subprocess_=True, card=True)  # fmt: skip
    assert_refused(result, run, "evaluation set nobody/nothing", "Hugging Face Hub")


def test_bad_settings_are_one_line(world, tmp_path):
    run, beir = world
    for override, said in (
        ("evaluate.metric=ndcg", "evaluate.metric=ndcg is not one of ndcg@10"),
        ("evaluate.seeds=[1,1]", "distinct seeds"),
        ("evaluate.bogus=1", "unknown key 'evaluate.bogus'"),
        ("num_rows=3", "num_rows=3 is not an evaluate, embedder or scoring setting"),
        (f"evaluate.base={tmp_path / 'no-model'}", "is no folder"),
        ("evaluate.heldout_share=1", "leaves queries for both"),
    ):
        sets = "[heldout]" if "heldout" in override else f"[{beir}]"
        assert_refused(evaluate(run, f"evaluate.sets={sets}", override, cwd=tmp_path), run, said)


def test_placeholder_rows_and_rows_with_nothing_to_train_on_are_one_line(world, tmp_path):
    _, beir = world
    mock = write_run(tmp_path / "mock", [Row(0, "text_retrieval", outputs={"user_query": "q", "positive_document": "p"},
                                             model_name="mock", attributes={"task": "t"})])  # fmt: skip
    (mock / "evaluation.json").write_text(EARLIER)
    assert_refused(evaluate(mock, f"evaluate.sets=[{beir}]", cwd=tmp_path), mock, "PLACEHOLDER rows from llm=mock")
    brainstorm = write_run(tmp_path / "brainstorm", [Row(0, "brainstorm", outputs={"tasks": ["a"]}, model_name="m")])
    (brainstorm / "evaluation.json").write_text(EARLIER)
    assert_refused(evaluate(brainstorm, f"evaluate.sets=[{beir}]", cwd=tmp_path), brainstorm, "no rows to train on")
    # Every row a copy of an evaluation query: nothing left to train on.
    queries = [json.loads(line)["text"] for line in (beir / "queries.jsonl").read_text().splitlines()]
    copies = write_run(tmp_path / "copies", [(q, "d0x1 d0x2", None) for q in queries])
    (copies / "evaluation.json").write_text(EARLIER)
    assert_refused(evaluate(copies, f"evaluate.sets=[{beir}]", cwd=tmp_path), copies, "copies an evaluation query")
    assert_refused(evaluate(tmp_path / "nowhere", cwd=tmp_path), copies, "holds no data.jsonl")


def test_without_sentence_transformers_the_line_names_the_extra(world, tmp_path, monkeypatch):
    run, beir = world
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as where the extra is not installed
    result = evaluate(run, f"evaluate.sets=[{beir}]", cwd=tmp_path)
    assert_refused(result, run, "evaluate needs sentence-transformers", "synthkit-embed[evaluate]")


def test_evaluate_true_refuses_before_any_row_is_made(openai_server, tmp_path, monkeypatch, beir):
    server = openai_server()
    out = tmp_path / "out"
    for overrides, said in (
        (["evaluate.sets=[]"], "evaluate.sets is empty"),
        ([f"evaluate.sets=[{tmp_path / 'nothing'}]"], "is not a folder"),
        (["evaluate.sets=[heldout]", "evaluate.metric=map"], "evaluate.metric=map"),
    ):
        result = run_synthkit("task=text_retrieval", "task.task=Find recipes for a dish", *server_llm(server), "num_rows=2",
                              f"output_dir={out}", "evaluate=true", *overrides, cwd=tmp_path)  # fmt: skip
        assert_one_line_error(result, said)
        assert not out.exists() and server.stats()["requests"] == 0
    result = run_synthkit("llm=mock", "num_rows=2", f"output_dir={out}", "evaluate=true", "evaluate.sets=[heldout]",
                          cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "evaluate=true with llm=mock")
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "accelerate", None)
    result = run_synthkit("task=text_retrieval", "task.task=Find recipes for a dish", *server_llm(server), "num_rows=2",
                          f"output_dir={out}", "evaluate=true", f"evaluate.sets=[{beir}]", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "evaluate needs ", "synthkit-embed[evaluate]")
    assert not out.exists() and server.stats()["requests"] == 0


def evaluation_of(run, deltas: dict, verdicts: dict) -> dict:
    """An evaluation.json as evaluate writes it, reduced to what the sweep's table reads."""
    sets = [
        {"set": name, "metric": "ndcg@10", "delta": d, "ci_low": d - 0.02, "ci_high": d + 0.02,
         "verdict": verdicts[name], "self_labelled": name == "heldout",
         "setting": "self-labelled, in-domain: ..." if name == "heldout" else "out-of-domain: ..."}
        for name, d in deltas.items()
    ]  # fmt: skip
    (run / "evaluation.json").write_text(json.dumps({"sets": sets}))


def test_a_sweep_table_ranks_its_jobs_by_delta_per_set(tmp_path):
    sweep = tmp_path / "sweep"
    deltas = [{"beir": 0.01, "heldout": 0.2}, {"beir": -0.05}, {"beir": 0.08, "heldout": -0.01}, None]
    for job, delta in enumerate(deltas):
        run = write_run(sweep / str(job), topic_rows(1, topics=2, seed=job))
        (run / ".hydra").mkdir()
        # A list-valued override (every job's evaluate.sets) is no coordinate, and no reason to fail the merge.
        (run / ".hydra" / "overrides.yaml").write_text(f"- task.difficulty=d{job}\n- evaluate.sets=[beir,heldout]\n")
        if delta:
            verdicts = {n: "better" if d > 0.02 else "worse" if d < -0.02 else "no measurable change" for n, d in
                        delta.items()}  # fmt: skip
            evaluation_of(run, delta, verdicts)
    text, _ = merge_sweep(sweep)
    assert "| Δ ndcg@10 beir (rank) | Δ ndcg@10 heldout (self-labelled, in-domain) (rank) |" in text
    assert "| 0 | d0 | 2 | 0 | did not finish | = +0.010 [-0.010, +0.030] #2 | ↑ +0.200 [+0.180, +0.220] #1 |" in text
    assert "| 1 | d1 | 2 | 0 | did not finish | ↓ -0.050 [-0.070, -0.030] #3 | - |" in text
    assert "| 2 | d2 | 2 | 0 | did not finish | ↑ +0.080 [+0.060, +0.100] #1 | = -0.010 [-0.030, +0.010] #2 |" in text
    assert "| 3 | d3 | 2 | 0 | did not finish | - | - |" in text
    assert delta_columns([None, None]) == ([], [[], []])


def test_a_set_in_mtebs_hub_layout_is_read_as_the_hub_serves_it(beir, tmp_path, monkeypatch):
    """The Hub path without the Hub: a folder laid out as mteb/scifact is on the Hub (configs corpus, queries and
    default), read by the same datasets.load_dataset call."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    hub = tmp_path / "mteb-like"
    (hub / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (hub / name).write_text((beir / name).read_text())
    rows = [line.split("\t") for line in (beir / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    (hub / "qrels" / "test.jsonl").write_text(
        "".join(json.dumps({"query-id": q, "corpus-id": d, "score": int(s)}) + "\n" for q, d, s in rows)
    )
    (hub / "README.md").write_text(
        "---\nconfigs:\n- config_name: corpus\n  data_files:\n  - split: corpus\n    path: corpus.jsonl\n"
        "- config_name: queries\n  data_files:\n  - split: queries\n    path: queries.jsonl\n"
        "- config_name: default\n  data_files:\n  - split: test\n    path: qrels/test.jsonl\n---\n"
    )
    from synthkit.results.evaluation.sets import load_hub

    loaded, folder = load_hub(str(hub)), load_beir(str(beir))
    assert (loaded.corpus, loaded.queries, loaded.qrels) == (folder.corpus, folder.queries, folder.qrels)
    with pytest.raises(UserError, match="does not load from the Hugging Face Hub"):
        load_hub(str(hub), split="dev")

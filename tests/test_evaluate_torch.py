"""`synthkit evaluate` for real, on the CPU, with models made here (HF_HUB_OFFLINE: nothing is downloaded): the sign
of the delta both ways (rows whose positives answer the queries gain, the same rows with their positives dealt out
at random do not), a planted copy of an evaluation query decontaminated, the per-query metrics against a numpy
ranking, one training set per task type with its loss and sampler, heldout and leave-one-task-type-out, hard
negatives, a tiny transformer, evaluate=true at the end of a run, and the sweep's ranked Δ columns.
EVAL_TEST_SEED picks the world (model vectors, evaluation set, rows): the sign must hold for any.
Needs '.[evaluate]' and a torch build (CI's second step); skipped elsewhere."""

import json
import os

import pytest

pytest.importorskip("sentence_transformers", reason="evaluation needs '.[evaluate]' and torch")
pytest.importorskip("accelerate", reason="evaluation needs '.[evaluate]' and torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from evaluation_worlds import (  # noqa: E402
    INSTRUCTION,
    retrieval_row,
    tiny_static_model,
    tiny_transformer_model,
    topic_beir_set,
    topic_rows,
    write_run,
)
from helpers import assert_one_line_error, run_synthkit, server_llm  # noqa: E402

from synthkit.core.record import Row  # noqa: E402
from synthkit.results.card import write_card  # noqa: E402
from synthkit.results.evaluation.models import load_model  # noqa: E402
from synthkit.results.evaluation.retrieval import per_query_scores  # noqa: E402
from synthkit.results.evaluation.sets import load_beir  # noqa: E402
from synthkit.results.export import Example, to_examples  # noqa: E402
from synthkit.results.rundir import packaged_tasks  # noqa: E402
from synthkit.results.sweep import merge_sweep  # noqa: E402
from synthkit.results.training_sets import st_datasets  # noqa: E402

SEED = int(os.environ.get("EVAL_TEST_SEED", "0"))
# Tiny models gain nothing from a second thread, and on 2 busy cores two torch threads wait on each other.
FAST = ["evaluate.threads=1", "evaluate.device=cpu", "evaluate.batch_size=16"]
STATIC = [*FAST, "evaluate.epochs=2", "evaluate.learning_rate=0.1"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Nothing is downloaded: the Hub offline for each test, and online again after it (other tests serve a Hub of
    their own). huggingface_hub read HF_HUB_OFFLINE when imported; it asks its constant at each request."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    return tiny_static_model(root / "base", seed=SEED), topic_beir_set(root / "topics", seed=SEED)


def evaluate(run, *overrides, cwd):
    return run_synthkit("evaluate", str(run), *overrides, cwd=cwd, card=True)


def in_sweep(folder, job: int, rows: list):
    run = write_run(folder / str(job), rows)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(f"- task.difficulty=d{job}\n", encoding="utf-8")
    return run


def test_true_rows_gain_shuffled_rows_do_not_and_a_planted_copy_is_left_out(world, tmp_path):
    base, beir = world
    queries = [json.loads(line) for line in (beir / "queries.jsonl").read_text().splitlines()]
    planted = next(q for q in queries if q["_id"] == "q3-1")
    rows = topic_rows(40, seed=SEED)
    true_run = in_sweep(tmp_path / "sweep", 0, [*rows, (planted["text"], rows[0][1], rows[0][2])])
    shuffled_run = in_sweep(tmp_path / "sweep", 1, topic_rows(40, seed=SEED, shuffled=True))
    write_card(true_run)  # a run with a card: evaluate adds its section
    overrides = [f"evaluate.base={base}", f"evaluate.sets=[{beir}]", f"evaluate.seeds=[{SEED},{SEED + 1}]", *STATIC]

    result = evaluate(true_run, *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((true_run / "evaluation.json").read_text())
    (entry,) = evaluation["sets"]
    assert {"set", "metric", "base", "tuned", "delta", "ci_low", "ci_high", "queries", "train_rows",
            "decontaminated"} <= set(entry)  # fmt: skip
    assert entry["set"] == str(beir) and entry["metric"] == "ndcg@10" and entry["queries"] == 64
    assert 0.2 < entry["base"] < 0.8, entry  # the base knows the topics a little: room to gain and to lose
    assert entry["ci_low"] > 0 and entry["verdict"] == "better", entry
    assert all(run["ci_low"] > 0 for run in entry["seeds"]) and len(entry["seeds"]) == 2
    assert entry["delta"] == pytest.approx(entry["tuned"] - entry["base"])
    # The planted copy of an evaluation query is left out, and said so; nothing else is.
    assert entry["decontaminated"] == 1 and entry["train_rows"] == len(rows)
    assert evaluation["decontaminated_examples"] == [
        {"query": planted["text"], "set": str(beir), "query_id": "q3-1", "rule": "whole query"}
    ]
    assert f"ndcg@10 on {beir}" in result.stdout and "better" in result.stdout
    assert "1 left out as copies of evaluation queries" in evaluation["summary"]
    card = (true_run / "README.md").read_text()
    assert "## Does the data help?" in card and (true_run / "plots" / "evaluation.png").stat().st_size > 1000
    assert "| ndcg@10 |" in card and "q3-1" in card
    (cached,) = (tmp_path / "synthkit-cache" / "evaluate").iterdir()
    stamp = cached.stat().st_mtime_ns

    result = evaluate(shuffled_run, *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (shuffled,) = json.loads((shuffled_run / "evaluation.json").read_text())["sets"]
    assert shuffled["ci_low"] <= 0 and shuffled["verdict"] != "better", shuffled
    assert all(run["ci_low"] <= 0 for run in shuffled["seeds"])
    assert shuffled["base"] == entry["base"]  # the same base, its corpus embeddings read back from the cache
    assert [p.stat().st_mtime_ns for p in (tmp_path / "synthkit-cache" / "evaluate").iterdir()] == [stamp]
    assert not (shuffled_run / "README.md").exists()  # no card made where there was none

    # The sweep's coverage table ranks the jobs: the true rows' job first.
    text, _ = merge_sweep(tmp_path / "sweep")
    assert f"Δ ndcg@10 {beir} (in-domain) (rank)" in text or f"Δ ndcg@10 {beir} (rank)" in text
    (row0,) = [line for line in text.splitlines() if line.startswith("| 0 |")]
    (row1,) = [line for line in text.splitlines() if line.startswith("| 1 |")]
    assert row0.endswith("#1 |") and "↑ +" in row0 and row1.endswith("#2 |") and "↑" not in row1


def test_per_query_metrics_match_a_numpy_ranking(world):
    base, beir = world
    eval_set = load_beir(str(beir))
    model = load_model(base, "cpu")
    scores = per_query_scores(model, eval_set, None, 64, None)  # raises if its means differ from the evaluator's
    texts = eval_set.query_texts(None)
    ids, doc_ids = list(eval_set.queries), list(eval_set.corpus)
    q = model.encode([texts[i] for i in ids], normalize_embeddings=True)
    d = model.encode([eval_set.corpus[i] for i in doc_ids], normalize_embeddings=True)
    sims = q @ d.T
    for row, qid in enumerate(ids):
        order = sorted(range(len(doc_ids)), key=lambda j: (-round(float(sims[row, j]), 5), doc_ids[j]))
        relevant = [doc_ids[j] in eval_set.qrels[qid] for j in order]
        ideal = sum(1 / np.log2(i + 2) for i in range(min(10, len(eval_set.qrels[qid]))))
        dcg = sum(r / np.log2(i + 2) for i, r in enumerate(relevant[:10]))
        assert scores["ndcg@10"][row] == pytest.approx(dcg / ideal, abs=1e-6)
        assert scores["mrr@10"][row] == pytest.approx(next((1 / (i + 1) for i, r in enumerate(relevant[:10]) if r), 0))
        assert scores["recall@100"][row] == pytest.approx(sum(relevant[:100]) / len(eval_set.qrels[qid]))


def mixed_rows(seed: int = SEED) -> list:
    """Retrieval rows (some without a negative), classification, STS with its grades, a brainstorm row."""
    rows = [retrieval_row(i, *r) for i, r in enumerate(topic_rows(4, seed=seed))]
    rows += [retrieval_row(len(rows) + i, q, p, None) for i, (q, p, _) in enumerate(topic_rows(2, seed=seed + 7))]
    labels = ["d0x0 d0x1", "d1x0 d1x1", "d2x0 d2x1"]
    for t in range(3):
        for i in range(4):
            rows.append(Row(len(rows), "text_classification", outputs={"input_text": f"q{t}x{i} q{t}x{i + 1}",
                            "label": labels[t], "misleading_label": labels[(t + 1) % 3]},
                            attributes={"task": "Classify by topic"}, model_name="m"))  # fmt: skip
    for i in range(4):
        rows.append(Row(len(rows), "monolingual_triplet", outputs={"S1": f"q{i}x1 q{i}x2", "S2": f"d{i}x3 d{i}x4",
                        "S3": f"d{i + 1}x1 d{i + 1}x2"}, attributes={"high_score": 4.5, "low_score": 2.5},
                        model_name="m"))  # fmt: skip
    return rows + [Row(len(rows), "brainstorm", outputs={"tasks": ["a", "b"]}, model_name="m")]


def test_one_training_set_per_task_type_with_its_loss_and_batches(world):
    base, _ = world
    examples, skipped = to_examples(mixed_rows(), packaged_tasks())
    assert skipped == 1  # brainstorm makes no training example
    sets = st_datasets(examples, instruction="anchor")  # as evaluate trains: the definition in each query's text
    assert sorted(sets.datasets) == ["monolingual_triplet", "text_classification", "text_retrieval"]
    retrieval = sets.datasets["text_retrieval"].to_dict()
    assert list(retrieval) == ["anchor", "positive", "negative"]
    assert retrieval["anchor"][0] == f"Instruct: {INSTRUCTION}\nQuery: {examples[0].query}"
    assert retrieval["negative"][:32] == [e.negative for e in examples[:32]]
    # Rows generated without a negative get another row's positive: one set of columns per dataset.
    assert all(
        n in retrieval["positive"] and n != p for p, n in zip(retrieval["positive"][32:], retrieval["negative"][32:])
    )
    sts = sets.datasets["monolingual_triplet"].to_dict()
    assert sts["score"] == [0.875, 0.375] * 4  # the grades the rows were asked for (4.5, 2.5 of 1-5), in [0, 1]
    assert sts["sentence1"][0].startswith("Instruct: Retrieve semantically similar text.\nQuery: ")
    assert sts["sentence2"][0].startswith("Instruct: Retrieve semantically similar text.\nQuery: ")  # symmetric
    classification = sets.datasets["text_classification"].to_dict()
    assert classification["negative"][0] == "d1x0 d1x1" and len(classification["anchor"]) == 12
    model = load_model(base, "cpu")
    losses = {name: type(loss).__name__ for name, loss in sets.loss_modules(model).items()}
    assert losses == {"monolingual_triplet": "CoSENTLoss", "text_classification": "TripletLoss",
                      "text_retrieval": "MultipleNegativesRankingLoss"}  # fmt: skip
    assert sets.in_batch_negatives == {
        "monolingual_triplet": False, "text_classification": False, "text_retrieval": True}  # fmt: skip
    samplers = {
        name: type(sets.batch_sampler(dataset, batch_size=4, drop_last=False, valid_label_columns=["score"],
                                      generator=torch.Generator(), seed=0)).__name__
        for name, dataset in sets.datasets.items()
    }  # fmt: skip
    assert samplers == {"monolingual_triplet": "DefaultBatchSampler", "text_classification": "DefaultBatchSampler",
                        "text_retrieval": "NoDuplicatesBatchSampler"}  # fmt: skip
    # Every kind an export block can declare is trainable, the task types of several steps too.
    other = Example("reasoning_retrieval", "Find help", "a question", "a passage", None, "only_1neg")
    assert list(st_datasets([other, *examples[:2]]).datasets) == ["reasoning_retrieval", "text_retrieval"]


def test_heldout_and_leave_one_task_type_out_on_a_mixed_run(world, tmp_path):
    base, beir = world
    run = write_run(tmp_path / "mixed", mixed_rows())
    result = evaluate(run, f"evaluate.base={base}", f"evaluate.sets=[heldout,{beir}]", "evaluate.heldout_share=0.3",
                      "evaluate.ablate=task_type", "evaluate.hard_negatives=2", f"embedder.model={base}", *STATIC,
                      cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((run / "evaluation.json").read_text())
    heldout, other = evaluation["sets"]
    assert heldout["set"] == "heldout" and heldout["self_labelled"] is True
    assert heldout["setting"].startswith("self-labelled, in-domain") and not other["self_labelled"]
    assert "heldout (self-labelled, in-domain)" in evaluation["summary"] and "self-labelled" in result.stdout
    assert evaluation["held_out"] > 0 and heldout["queries"] <= evaluation["held_out"]
    # The held-out queries' own rows are never trained on.
    assert evaluation["train_rows"] + evaluation["held_out"] + evaluation["decontaminated"] == evaluation["rows"]
    plan = evaluation["training"][0]
    assert plan["loss"] == {"monolingual_triplet": "CoSENTLoss", "text_classification": "TripletLoss",
                            "text_retrieval": "MultipleNegativesRankingLoss"}  # fmt: skip
    assert plan["columns"]["text_retrieval"] == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert plan["columns"]["text_classification"] == ["anchor", "positive", "negative"]  # its own label only
    ablation = {block["set"]: block for block in evaluation["ablation"]["sets"]}
    assert set(ablation) == {"heldout", str(beir)}
    left_out = {row["left_out"] for row in ablation[str(beir)]["left_out"]}
    assert left_out == {"monolingual_triplet", "text_classification", "text_retrieval"}
    for row in ablation[str(beir)]["left_out"]:
        assert row["adds_ci_low"] <= row["adds"] <= row["adds_ci_high"]
        assert row["verdict"] in ("helps", "hurts", "no measurable change")
    assert "without text_retrieval:" in result.stdout


def test_an_unloadable_base_model_is_one_line_and_nothing_is_written_over(world, tmp_path):
    _, beir = world
    run = write_run(tmp_path / "run", topic_rows(2, seed=SEED))
    (run / "evaluation.json").write_text('{"earlier": true}')
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text("{not json")
    for model in (tmp_path, junk, "nobody/no-such-model"):
        result = evaluate(run, f"evaluate.base={model}", f"evaluate.sets=[{beir}]", *FAST, cwd=tmp_path)
        assert_one_line_error(result, f"evaluate.base={model} does not load as a sentence-transformers model")
        assert (run / "evaluation.json").read_text() == '{"earlier": true}'


def test_a_tiny_transformer_trains_at_a_transformers_rate(world, tmp_path):
    base, beir = world
    corpus = [json.loads(line)["text"] for line in (beir / "corpus.jsonl").read_text().splitlines()]
    model = tiny_transformer_model(tmp_path / "tiny-bert", [q for q, _, _ in topic_rows(4)] + corpus + [INSTRUCTION])
    run = write_run(tmp_path / "run", topic_rows(4, seed=SEED))
    result = evaluate(run, f"evaluate.base={model}", f"evaluate.sets=[{beir}]", "evaluate.max_steps=2", *FAST,
                      cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bars of loading, training or encoding among synthkit's lines
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["training"][0]["learning_rate"] == 2e-5 and evaluation["training"][0]["steps"] == 2
    static = evaluate(run, f"evaluate.base={base}", f"evaluate.sets=[{beir}]", "evaluate.max_steps=1",
                      "evaluate.save_models=true", "evaluate.ablate=task_type", *FAST, cwd=tmp_path)  # fmt: skip
    assert static.returncode == 0, static.stderr
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["training"][0]["learning_rate"] == 0.05
    assert evaluation["ablation"]["note"] == "one task type only: nothing to leave out"
    saved = load_model(str(run / "models" / "seed-0"), "cpu")  # the tuned model, kept as asked
    assert saved.encode(["q0x1"]).shape == (1, 32)


def test_evaluate_true_evaluates_the_rows_at_the_end_of_a_run(make, openai_server, world, tmp_path):
    base, _ = world
    finished = make("task=text_retrieval", "task.task=Find recipes for a dish", "num_rows=12", "evaluate=true",
                    f"evaluate.base={base}", "evaluate.sets=[heldout]", "evaluate.heldout_share=0.25",
                    "evaluate.max_steps=2", *FAST, server=openai_server())  # fmt: skip
    (note,) = [n for n in finished.result.notes if n.startswith("evaluation of ")]
    assert "ndcg@10 on heldout (self-labelled, in-domain)" in note and "95% CI" in note
    evaluation = json.loads((finished.out_dir / "evaluation.json").read_text())
    assert evaluation["summary"] == note and evaluation["sets"][0]["queries"] == 3


def test_each_job_of_a_sweep_evaluates_its_own_rows_and_the_table_ranks_them(openai_server, world, tmp_path):
    base, beir = world
    sweep = tmp_path / "sweep"
    result = run_synthkit("-m", *server_llm(openai_server()), "task=text_retrieval", "task.task=Find recipes",
                          "task.difficulty=college,PhD", "num_rows=6", "evaluate=true", f"evaluate.base={base}",
                          f"evaluate.sets=[{beir}]", "evaluate.max_steps=1", *FAST, f"output_dir={sweep}",
                          cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for job in ("0", "1"):
        (entry,) = json.loads((sweep / job / "evaluation.json").read_text())["sets"]
        assert entry["set"] == str(beir) and entry["train_rows"] == 6
    assert len(list((tmp_path / "synthkit-cache" / "evaluate").iterdir())) == 1  # one base corpus, encoded once
    coverage = (sweep / "coverage.md").read_text()
    assert f"Δ ndcg@10 {beir} (rank) |" in coverage
    assert {line.rsplit("#", 1)[1][0] for line in coverage.splitlines() if line.startswith(("| 0 |", "| 1 |"))} == {
        "1", "2"}  # fmt: skip


def test_the_recipe_with_ablate_task_type_evaluates_each_task_type_left_out(openai_server, world, tmp_path):
    base, beir = world
    out = tmp_path / "e5"
    result = run_synthkit("recipe=e5", *server_llm(openai_server()), "num_rows=40", f"output_dir={out}",
                          "evaluate=true", "evaluate.ablate=task_type", f"evaluate.base={base}",
                          f"evaluate.sets=[{beir}]", "evaluate.max_steps=1", *FAST, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((out / "evaluation.json").read_text())
    types = {"text_retrieval", "text_classification", "monolingual_triplet", "bitext_retrieval", "long_text_matching",
             "short_text_matching"}  # fmt: skip
    assert set(evaluation["training"][0]["rows"]) == types
    (block,) = evaluation["ablation"]["sets"]
    assert {row["left_out"] for row in block["left_out"]} == types and block["set"] == str(beir)
    assert "without text_classification:" not in result.stdout  # the run's summary has the one line, not the report
    assert any(line.strip().startswith("evaluation of ") for line in result.stdout.splitlines())


def test_a_preview_checks_the_settings_and_evaluates_nothing(make, openai_server, world):
    base, beir = world
    finished = make("task=text_retrieval", "task.task=Find recipes", "num_rows=50", "preview=2", "evaluate=true",
                    f"evaluate.base={base}", f"evaluate.sets=[{beir}]", server=openai_server())  # fmt: skip
    assert "evaluation: not run for a preview (evaluate=true evaluates the full run)" in finished.result.notes
    assert not (finished.out_dir / "evaluation.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_device_this_machine_lacks_is_one_line(world, tmp_path):
    base, beir = world
    run = write_run(tmp_path / "run", topic_rows(2, seed=SEED))
    result = evaluate(run, f"evaluate.base={base}", f"evaluate.sets=[{beir}]", "evaluate.device=cuda", cwd=tmp_path)
    assert_one_line_error(result, "evaluate.device=cuda: this machine has no cuda device")
    assert not (run / "evaluation.json").exists()

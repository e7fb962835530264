"""The sentence-transformers backend of the reference embedder, run for real (torch on the CPU): a
sentence-transformers model made here from the same tiny static vectors as test_score_cli's model2vec
one, saved and loaded by path as users load theirs. Same vectors, so the same flags; mining goes
through sentence-transformers' own mine_hard_negatives and must agree with the numpy path.
Skipped where sentence-transformers is not installed (pip install '.[st]' torch)."""

import pytest

pytest.importorskip("sentence_transformers", reason="the sentence-transformers backend needs '.[st]' and torch")

from helpers import read_jsonl, run_synthkit, tiny_static_model  # noqa: E402
from test_score_cli import ROWS, TOPICS, write_run  # noqa: E402

from synthkit.quality.embedder import load_embedder  # noqa: E402
from synthkit.quality.mining import _mine_group, mine_hard_negatives  # noqa: E402
from synthkit.results.export import Example  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_static_model(tmp_path_factory.mktemp("model") / "tiny-static", TOPICS))


@pytest.fixture(scope="module")
def st_dir(model_dir, tmp_path_factory):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    path = tmp_path_factory.mktemp("st") / "tiny-st"
    SentenceTransformer(modules=[StaticEmbedding.from_model2vec(model_dir), Normalize()], device="cpu").save(str(path))
    return str(path)


def test_score_with_a_sentence_transformers_model_flags_as_the_static_one(tmp_path, model_dir, st_dir):
    static = write_run(tmp_path / "static")
    st = write_run(tmp_path / "st")
    assert run_synthkit("score", str(static), f"embedder.model={model_dir}", cwd=tmp_path, card=True).returncode == 0
    result = run_synthkit(
        "score", str(st), "embedder=sentence_transformers", f"embedder.model={st_dir}", "embedder.device=cpu",
        "embedder.query_prompt=null", "embedder.document_prompt=null", cwd=tmp_path, card=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"with sentence-transformers {st_dir}" in result.stdout
    scores = read_jsonl(st / "scores.jsonl")
    assert [set(s["flags"]) for s in scores] == [flags for *_, flags in ROWS]
    for a, b in zip(read_jsonl(static / "scores.jsonl"), scores):
        assert abs(a["pos_sim"] - b["pos_sim"]) < 1e-3 and abs(a["neg_sim"] - b["neg_sim"]) < 1e-3


def test_mining_through_sentence_transformers_agrees_with_the_numpy_path(st_dir):
    embedder = load_embedder("sentence-transformers", st_dir, device="cpu", batch_size=8)
    examples = [Example("text_retrieval", "", q, p, n, "only_1neg") for q, p, n, _ in ROWS]
    mined = mine_hard_negatives(embedder, examples, k=3, ratio=0.95)
    reference = _mine_group(embedder, examples, 3, 0.95)
    for e, m, r in zip(examples, mined, reference):
        assert e.positive not in m.negatives and e.negative not in m.negatives
        assert all(s < 0.95 * m.pos_score for s in m.scores), (m.scores, m.pos_score)
        assert m.scores == sorted(m.scores, reverse=True)
        # The same hardness as the numpy path's (texts may differ where cosines tie).
        assert m.pos_score == pytest.approx(r.pos_score, abs=1e-3) and len(m.scores) == len(r.scores)
        assert m.scores == pytest.approx(r.scores, abs=1e-3)
        if m.negatives:
            cosines = embedder.encode_documents(m.negatives) @ embedder.encode_queries([e.query])[0]
            assert list(cosines) == pytest.approx(m.scores, abs=1e-3)
    assert sum(len(m.negatives) for m in mined) >= len(examples)  # it mined something


def test_a_sentence_transformers_path_that_is_no_model_is_one_line(tmp_path):
    run = write_run(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    result = run_synthkit(
        "score",
        str(run),
        "embedder=sentence_transformers",
        f"embedder.model={tmp_path / 'empty'}",
        cwd=tmp_path,
        card=True,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("synthkit: error: embedder.model=") and "synthkit-embed[st]" in result.stderr


# --- The sentence-transformers export, trained as the README shows: one dataset per task type, a loss each.

TRIPLETS = [("cat purr", "kitten feline cat", "cat ball"), ("rain storm", "storm cloud rain", "rain song"),
            ("bake bread", "bread oven flour", "bread goal"), ("bank loan", "loan credit money", "bank soil")]  # fmt: skip


def write_mixed_run(directory):
    """A run of four task types in the tiny model's words (written as Rows: llm=mock text is no words it knows)."""
    from synthkit.core.record import Row

    directory.mkdir(parents=True)
    rows = []
    for i, (query, positive, negative) in enumerate(TRIPLETS):
        task = {"task": "Retrieve documents about everyday topics.", "language": "English"}
        rows.append(Row(i, "text_retrieval", outputs={"user_query": query, "positive_document": positive,
                                                      "hard_negative_document": negative}, attributes=task))  # fmt: skip
        rows.append(Row(i, "short_text_matching", outputs={"input": query, "positive_document": positive},
                        attributes={"task": "Match a phrase to a longer one.", "language": "English"}))  # fmt: skip
        label, wrong = positive.split()[0], negative.split()[-1]
        rows.append(Row(i, "text_classification", outputs={"input_text": f"{query} {positive}", "label": label,
                                                           "misleading_label": wrong},
                        attributes={"task": "Classify a text by its topic.", "language": "English"}))  # fmt: skip
        scores = {"high_score": [4, 4.5, 5, 4][i], "low_score": [2.5, 3, 3.5, 3][i], "language": "English"}
        rows.append(Row(i, "monolingual_triplet", outputs={"S1": query, "S2": positive, "S3": negative},
                        attributes=scores))  # fmt: skip
    with open(directory / "data.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            row.model_name = "test-model"
            f.write(row.to_line())
    return directory


def test_the_readme_trains_the_sentence_transformers_export_one_loss_per_task_type(tmp_path, st_dir):
    import torch
    from helpers import readme_code
    from sentence_transformers import SentenceTransformer

    run = write_mixed_run(tmp_path / "run")
    assert run_synthkit("export", str(run), "--to", "sentence-transformers", cwd=tmp_path).returncode == 0
    snippet = next(c for c in readme_code("Exports for trainers") if "SentenceTransformerTrainer" in c)
    assert 'TrainingSets.load("outputs/<run>/exports/sentence-transformers")' in snippet
    # As a user runs it, with the tiny model for theirs and a few steps.
    code = (
        snippet.replace("outputs/<run>", str(run))
        .replace('"intfloat/multilingual-e5-small"', repr(st_dir))
        .replace('"models/e5-synthetic"', repr(str(tmp_path / "model")))
        .replace("per_device_train_batch_size=32", "per_device_train_batch_size=4")
        .replace("max_steps=1000", "max_steps=6, use_cpu=True, report_to='none', disable_tqdm=True, seed=1")
    )
    before = SentenceTransformer(st_dir, device="cpu")[0].embedding.weight.detach().clone()
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    trainer, sets = scope["trainer"], scope["sets"]
    assert trainer.state.global_step == 6
    losses = {name: type(loss).__name__ for name, loss in trainer.loss.items()}
    assert losses == {
        "text_retrieval": "MultipleNegativesRankingLoss",
        "short_text_matching": "MultipleNegativesRankingLoss",
        "text_classification": "TripletLoss",
        "monolingual_triplet": "CoSENTLoss",
    }
    after = scope["model"][0].embedding.weight.detach()
    assert not torch.allclose(before, after)  # it trained
    # STS pairs with their scores scaled from 1-5 to [0, 1], the fixed instruction as the trainer's prompt.
    sts = sets.datasets["monolingual_triplet"]
    assert sts.column_names == ["sentence1", "sentence2", "score"] and len(sts) == 8
    assert sts["score"][:2] == [0.75, 0.375] and sts["sentence1"][0] == "cat purr"
    instructed = "Instruct: Retrieve semantically similar text.\nQuery: "
    assert sets.prompts["monolingual_triplet"] == {"sentence1": instructed, "sentence2": instructed}  # symmetric
    # Per-row definitions differ across task types but one is shared within each here: prompts, bare anchors.
    assert sets.datasets["text_retrieval"]["anchor"][0] == "cat purr"
    # Classification draws its batches with duplicates allowed; retrieval keeps duplicates out of a batch.
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    kwargs = {"batch_size": 2, "drop_last": False, "valid_label_columns": [], "generator": torch.Generator(), "seed": 0}
    for name, in_batch in (("text_classification", False), ("text_retrieval", True)):
        named = sets.datasets[name].add_column("dataset_name", [name] * len(sets.datasets[name]))
        assert isinstance(sets.batch_sampler(named, **kwargs), NoDuplicatesBatchSampler) == in_batch

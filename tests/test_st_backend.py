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

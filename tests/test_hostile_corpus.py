"""Corpora and settings a user gets wrong, and corpora that change (synthkit/corpus/): ids that are not ids,
ids used twice, lines without ids, a huge single-line document, corpus= on a task that draws from none, and a
corpus edited between the run and its BEIR export. Each is a one-line error that writes nothing, or data
whose ids and texts still agree."""

import json
import time

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

from synthkit.corpus.chunker import Chunker, ChunkSettings, segments
from synthkit.corpus.index import open_index


def grounded(server, corpus, out, *args, cwd):
    return run_synthkit(
        *server_llm(server), "task=grounded_retrieval", f"corpus={corpus}", f"output_dir={out}", *args, cwd=cwd
    )


def jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


BAD_IDS = [
    ([{"id": {"x": 1}, "text": "bread"}], ["id field 'id' holds dict", "id:"]),
    ([{"id": [1, 2], "text": "bread"}], ["holds list"]),
    ([{"id": True, "text": "bread"}], ["holds bool"]),
    ([{"id": "a\tb", "text": "bread"}], ["holds a tab or line break"]),
    ([{"id": "  ", "text": "bread"}], ["is empty"]),
    ([{"id": "dup", "text": "one"}, {"id": "dup", "text": "two"}], ["document id 'dup' is used twice"]),
]


@pytest.mark.parametrize("records,needles", BAD_IDS, ids=[n[0] for _, n in BAD_IDS])
def test_ids_that_would_break_rows_or_qrels_are_one_line_and_write_nothing(tmp_path, records, needles):
    corpus = jsonl(tmp_path / "docs.jsonl", records)
    result = run_synthkit("task=grounded_retrieval", "llm=mock", f"corpus={corpus}", f"output_dir={tmp_path / 'run'}",
                          cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "run").exists()
    assert not list((tmp_path / "synthkit-cache").glob("corpus/*")), "a failed index build leaves nothing"


def test_the_same_id_in_two_files_of_a_folder_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    jsonl(tmp_path / "docs" / "a.jsonl", [{"id": 1, "text": "bread one"}])
    jsonl(tmp_path / "docs" / "b.jsonl", [{"id": 1, "text": "bread two"}])
    with pytest.raises(Exception, match="document id '1' is used twice"):
        open_index(str(tmp_path / "docs"), "text", "id", ChunkSettings(200, 20), root=tmp_path / "index")


def test_lines_without_an_id_keep_their_own_id_when_read_back(tmp_path):
    corpus = jsonl(tmp_path / "docs.jsonl", [{"text": f"Document {i} about bread."} for i in range(4)])
    index = open_index(str(corpus), "text", "id", ChunkSettings(200, 20), root=tmp_path / "index")
    ids = [c.id for c in index.chunks()]
    assert len(set(ids)) == 4 and all(i.startswith("docs.jsonl@") for i in ids)  # not the cwd's path to it
    fresh = open_index(str(corpus), "text", "id", ChunkSettings(200, 20), root=tmp_path / "index2")
    assert [fresh.chunk(n).id for n in reversed(range(4))] == list(reversed(ids))  # read back out of order


def test_a_huge_single_line_is_chunked_in_linear_time():
    text = "word " * 400_000  # 2 MB without a break but spaces: the splitter alone takes ~30 s on it
    started = time.monotonic()
    spans = Chunker(ChunkSettings(1000, 100)).spans(text)
    assert time.monotonic() - started < 10
    assert all(length <= 1000 for _, length in spans)
    end = 0
    for start, length in spans:  # every word is in a chunk
        assert not text[end:start].strip()
        end = max(end, start + length)
    assert not text[end:].strip()


def test_segments_cut_at_the_best_break_and_lose_nothing():
    text = ("a b c. " * 30 + "\n\n") * 50 + "x" * 5000
    parts = segments(text, 1000)
    assert "".join(p for _, p in parts) == text and all(len(p) <= 1000 for _, p in parts)
    assert all(text[: o + len(p)].endswith("\n\n") for o, p in parts[:10])  # paragraph breaks first
    assert [o for o, _ in parts] == [sum(len(p) for _, p in parts[:i]) for i in range(len(parts))]


def test_corpus_on_a_task_that_draws_from_none_is_one_line(tmp_path):
    corpus = jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "bread"}])
    for extra in ([], ["dry_run=true"]):
        result = run_synthkit("task=text_retrieval", "llm=mock", f"corpus={corpus}", f"output_dir={tmp_path / 'run'}",
                              *extra, cwd=tmp_path)  # fmt: skip
        assert_one_line_error(result, "draws from no corpus", "task=grounded_retrieval")
        assert not (tmp_path / "run").exists()


def test_a_dry_run_with_a_bad_corpus_is_one_line(tmp_path):
    result = run_synthkit("task=grounded_retrieval", "llm=mock", f"corpus={tmp_path / 'nope'}", "dry_run=true",
                          cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "does not exist")


def test_beir_export_after_the_corpus_changed_pairs_queries_with_their_own_chunks(openai_server, tmp_path):
    corpus = jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Document {i} about bread."} for i in range(5)])
    out = tmp_path / "run"
    assert grounded(openai_server(), corpus, out, "num_rows=3", cwd=tmp_path).returncode == 0
    rows = read_jsonl(out / "data.jsonl")
    written = {r["corpus"]["chunk"]: r["attributes"]["passage"] for r in rows}
    jsonl(corpus, [{"id": f"d{i}", "text": f"Document {i} now about music."} for i in range(5)])
    result = run_synthkit("export", str(out), "--to", "beir", "--allow-placeholder", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    beir = out / "exports" / "beir"
    texts = {d["_id"]: d["text"] for d in read_jsonl(beir / "corpus.jsonl")}
    qrels = [line.split("\t") for line in (beir / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    assert len(qrels) == 3 and all(texts[c] == written[c] for _, c, _ in qrels)


def test_grounded_retrieval_is_checked_for_degenerate_answers_and_can_be_judged(tmp_path):
    from omegaconf import OmegaConf

    import synthkit
    from synthkit.spec.task import TaskSpec

    corpus = jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "Bread is baked in hot ovens with flour and water."}])
    cfg = synthkit.compose("task=grounded_retrieval", "llm=mock", f"corpus={corpus}")
    spec = TaskSpec(OmegaConf.to_container(cfg.task, resolve=True), corpus_root=tmp_path / "index")
    assert spec.data["judge"]["rubric"]
    drawn = spec.draw_attributes(0, 0) | {"query_length": "less than 5 words", "language": "English"}

    def failures(**outputs):
        answer = {"task_definition": "Given a baking question, retrieve passages that answer it.", **outputs}
        return [f.name for c in spec.checks if (f := c.failure(answer, drawn))]

    assert failures(query="bread baked hot ovens") == []  # a keyword query is made of the passage's words
    assert failures(query="query") and failures(query="N/A")
    assert failures(query=str(drawn["passage"]))  # the passage itself


def test_a_run_resumes_over_its_own_corpus_only(tmp_path):
    """Rows still to make would draw other chunks from an edited corpus: that resume is refused as one line. A
    corpus only touched (same texts, a new mtime, so a new index) resumes."""
    corpus = jsonl(
        tmp_path / "docs.jsonl", [{"id": i, "text": f"Document {i} about bread and ovens."} for i in range(6)]
    )
    out = tmp_path / "run"
    args = ("task=grounded_retrieval", "llm=mock", f"corpus={corpus}", f"output_dir={out}")
    first = run_synthkit(*args, "num_rows=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    time.sleep(0.01)
    corpus.write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")  # touched: same texts
    touched = run_synthkit(*args, "num_rows=3", cwd=tmp_path)
    assert touched.returncode == 0, touched.stderr
    jsonl(corpus, [{"id": i, "text": f"Document {i} about cheese."} for i in range(6)])
    edited = run_synthkit(*args, "num_rows=4", cwd=tmp_path)
    assert_one_line_error(edited, "holds rows made with another config", "corpus.grounded_retrieval/")
    assert len(read_jsonl(out / "data.jsonl")) == 3

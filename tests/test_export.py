"""synthkit export: a run's rows as E5 rows, a sentence-transformers dataset and FlagEmbedding JSONL."""

import subprocess
import sys

import datasets
import pyarrow.parquet as pq
import pytest

from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm


def export(source, *args, cwd):
    return subprocess.run([sys.executable, "-m", "synthkit", "export", str(source), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """A small recipe run: all six trainable task types, plus a brainstorm stage."""
    cwd = tmp_path_factory.mktemp("recipe")
    result = run_synthkit("recipe=e5", "llm=mock", "num_rows=300", f"output_dir={cwd / 'run'}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "run", {(r["cell"], r["row"]): r for r in read_jsonl(cwd / "run" / "data.jsonl")}


def test_e5_rows_follow_the_papers_mapping(recipe_run, tmp_path):
    run, rows = recipe_run
    result = export(run, "--to", "e5", "--out", tmp_path / "e5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    examples = read_jsonl(tmp_path / "e5" / "e5.jsonl")
    assert len(examples) == len(rows)
    keys = {"text_retrieval": ("user_query", "positive_document", "hard_negative_document"),
            "text_classification": ("input_text", "label", "misleading_label"),
            "short_text_matching": ("input", "positive_document", None),
            "long_text_matching": ("input", "positive_document", None),
            "monolingual_triplet": ("S1", "S2", "S3"), "bitext_retrieval": ("S1", "S2", "S3")}
    by_query = {e["query"]: e for e in examples}
    for r in rows.values():
        q, p, n = keys[r["task_type"]]
        e = by_query[r[q]]
        assert e["positive"] == r[p] and e["negative"] == (r[n] if n else None)
        expected = {"monolingual_triplet": "Retrieve semantically similar text.",
                    "bitext_retrieval": "Retrieve parallel sentences."}.get(r["task_type"], r["attributes"].get("task"))
        assert e["instruction"] == expected
    assert list(examples[0]) == ["instruction", "query", "positive", "negative"]


def test_sentence_transformers_dataset_loads(recipe_run, tmp_path):
    run, rows = recipe_run
    result = export(run, "--to", "sentence-transformers", "--out", tmp_path / "st", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    triplets = datasets.load_from_disk(str(tmp_path / "st" / "triplets"))
    pairs = datasets.load_from_disk(str(tmp_path / "st" / "pairs"))
    assert triplets.column_names == ["anchor", "positive", "negative"]
    assert pairs.column_names == ["anchor", "positive"]
    matching = sum(r["task_type"].endswith("text_matching") for r in rows.values())
    assert len(pairs) == matching and len(triplets) == len(rows) - matching
    assert all(a.startswith("Instruct: ") and "\nQuery: " in a for a in triplets["anchor"])
    assert pq.read_table(tmp_path / "st" / "triplets.parquet").column_names == ["anchor", "positive", "negative"]
    assert datasets.load_dataset("parquet", data_files=str(tmp_path / "st" / "pairs.parquet"))["train"].num_rows == matching


def test_flagembedding_rows_always_have_negatives(recipe_run, tmp_path):
    run, rows = recipe_run
    result = export(run, "--to", "flagembedding", "--out", tmp_path / "fe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    examples = read_jsonl(tmp_path / "fe" / "flagembedding.jsonl")
    assert len(examples) == len(rows)
    positives = {r.get("positive_document") for r in rows.values() if r["task_type"] == "short_text_matching"}
    for e in examples:
        assert set(e) == {"query", "pos", "neg", "prompt", "type"}
        assert len(e["pos"]) == 1 and len(e["neg"]) == 1 and e["neg"][0] and e["neg"] != e["pos"]
        assert e["prompt"].startswith("Instruct: ") and e["prompt"].endswith("\nQuery: ")
    # Matching rows have no generated negative: theirs is another row's positive of the same task.
    short = [e for e in examples if e["pos"][0] in positives]
    assert short and all(e["neg"][0] in positives for e in short)
    assert {e["type"] for e in examples} == {"normal", "symmetric_class"}


def test_exports_of_runs_through_the_server(openai_server, tmp_path):
    server = openai_server()
    for task, extra in (("bitext_retrieval", []), ("text_classification", ["task.task=Classify news by topic"])):
        out = tmp_path / task
        result = run_synthkit(f"task={task}", *server_llm(server), "num_rows=3", *extra, f"output_dir={out}",
                              cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert export(out, "--to", "e5", cwd=tmp_path).returncode == 0
        examples = read_jsonl(out / "exports" / "e5" / "e5.jsonl")
        assert len(examples) == 3 and all(e["query"] and e["positive"] and e["negative"] for e in examples)


def test_export_mistakes_are_one_line(recipe_run, tmp_path):
    run, _ = recipe_run
    assert_one_line_error(export(tmp_path / "nope", "--to", "e5", cwd=tmp_path), "holds no data.jsonl")
    assert_one_line_error(export(run, "--to", "csv", cwd=tmp_path), "invalid choice", "flagembedding")
    assert export(run, "--to", "e5", "--out", tmp_path / "x", cwd=tmp_path).returncode == 0
    assert_one_line_error(export(run, "--to", "e5", "--out", tmp_path / "x", cwd=tmp_path), "already exists", "--force")
    assert export(run, "--to", "e5", "--out", tmp_path / "x", "--force", cwd=tmp_path).returncode == 0
    result = export(run / "brainstorm", "--to", "e5", cwd=tmp_path)
    assert_one_line_error(result, "no rows that make training examples")

"""Unit tests of what synthkit writes: the Row record and its JSON lines (including lines exactly as
the previous release wrote them), duplicate detection, and the redaction of keys."""

import json
import os
import subprocess
import sys

import pytest

from synthkit.core import compose, secrets
from synthkit.core.record import Row, Usage, read_rows
from synthkit.errors import UserError
from synthkit.quality.dedup import Deduplicator

# Lines as the release before the typed Row wrote them (synthkit/engine.py at cc82cf4): identity, outputs,
# model_name, attributes, the cell's tags, then attempts and usage; a reject has reason, check and raw
# where a row has its outputs.
OLD_ROW = (
    '{"row": 0, "seed": 0, "task_type": "bitext_retrieval", "S1": "a", "S2": "b", "S3": "c", "model_name": "m", '
    '"attributes": {"unit": "phrase"}, "attempts": 1, '
    '"usage": {"prompt_tokens": 1, "completion_tokens": 2, "cost_usd": 0.1, "cached": 0}}'
)
OLD_REJECT = (
    '{"row": 7, "cell": "text_retrieval/German", "seed": 3, "task_type": "text_retrieval", '
    '"reason": "check distinct: user_query and positive_document are (near) duplicates", "check": "distinct", '
    '"raw": "{\\"user_query\\": \\"x\\"}", "attributes": {"language": "German"}, "attempts": 3, '
    '"usage": {"prompt_tokens": 30, "completion_tokens": 60, "cost_usd": null, "cached": 1}}'
)
OLD_PARSE_REJECT = (
    '{"row": 2, "seed": 0, "task_type": "bitext_retrieval", "reason": "the answer holds no JSON object", '
    '"raw": "Sorry, I cannot.", "attributes": {}, "attempts": 3, '
    '"usage": {"prompt_tokens": 3, "completion_tokens": 4, "cost_usd": 0.0, "cached": 0}}'
)
OLD_BRAINSTORM = (
    '{"row": 4, "cell": "brainstorm/text-retrieval", "seed": 0, "task_type": "brainstorm", '
    '"tasks": ["Retrieve recipes for a dish.", "Find case law for a question."], "model_name": "gpt-4o-mini", '
    '"attributes": {"category": "text-retrieval"}, "category": "text-retrieval", "attempts": 1, '
    '"usage": {"prompt_tokens": 100, "completion_tokens": 50, "cost_usd": 0.001, "cached": 0}}'
)
OLD_FROM_BRAINSTORM = (
    '{"row": 0, "cell": "text_retrieval/English", "seed": 0, "task_type": "text_retrieval", "user_query": "q", '
    '"positive_document": "p", "hard_negative_document": "n", "model_name": "m", '
    '"attributes": {"task": "Retrieve recipes for a dish.", "language": "English"}, "recipe": "e5", '
    '"brainstorm_row": 4, "attempts": 2, '
    '"usage": {"prompt_tokens": 5, "completion_tokens": 6, "cost_usd": 0.5, "cached": 0}}'
)


# Row.


def test_old_row_reads_back():
    row = Row.from_json(json.loads(OLD_ROW))
    assert (row.row, row.cell, row.seed, row.task_type) == (0, "", 0, "bitext_retrieval")
    assert row.outputs == {"S1": "a", "S2": "b", "S3": "c"}
    assert row.attributes == {"unit": "phrase"} and row.tags == {}
    assert (row.model_name, row.attempts) == ("m", 1)
    assert row.usage == Usage(1, 2, 0.1, 0)
    assert not row.rejected and row.key == ("", "", 0) and row.call_id == "0::0"


def test_old_reject_reads_back():
    row = Row.from_json(json.loads(OLD_REJECT))
    assert row.rejected and row.check == "distinct" and row.reason.startswith("check distinct")
    assert row.raw == '{"user_query": "x"}'
    assert row.outputs == {} and row.cell == "text_retrieval/German" and row.seed == 3
    assert row.usage.cost_usd is None and row.usage.cached == 1
    assert row.call_id == "3:text_retrieval/German:7"


def test_old_brainstorm_rows_read_back():
    brainstorm = Row.from_json(json.loads(OLD_BRAINSTORM))
    assert brainstorm.outputs == {"tasks": ["Retrieve recipes for a dish.", "Find case law for a question."]}
    assert brainstorm.tags == {"category": "text-retrieval"}
    made = Row.from_json(json.loads(OLD_FROM_BRAINSTORM))
    assert made.tags == {"recipe": "e5", "brainstorm_row": 4}
    assert list(made.outputs) == ["user_query", "positive_document", "hard_negative_document"]


@pytest.mark.parametrize("line", [OLD_ROW, OLD_REJECT, OLD_PARSE_REJECT, OLD_BRAINSTORM, OLD_FROM_BRAINSTORM])
def test_old_lines_write_back_identical(line):
    assert Row.from_json(json.loads(line)).to_line() == line + "\n"


def test_old_merged_sweep_line_writes_back_identical():
    line = OLD_ROW[:-1] + ', "sweep": {"task.unit": "phrase"}, "job": "0"}'
    row = Row.from_json(json.loads(line))
    assert row.tags == {"sweep": {"task.unit": "phrase"}, "job": "0"} and row.key == ("0", "", 0)
    assert row.to_line() == line + "\n"


def test_row_round_trip():
    row = Row(
        5,
        "toy",
        seed=2,
        cell="a=1",
        outputs={"q": "é", "items": ["x", "y"]},
        attributes={"a": 1},
        model_name="m",
        tags={"grid": {"a": 1}, "job": "3"},
        attempts=2,
        usage=Usage(1, 2, None, 1),
    )
    again = Row.from_json(json.loads(row.to_line()))
    assert again == row
    assert "é" in row.to_line()  # written as UTF-8, not \u escapes
    assert row.key == ("3", "a=1", 5)


def test_rejected_row_round_trip_keeps_no_outputs():
    row = Row(1, "toy", reason="bad", check=None, raw="text", outputs={"q": "ignored"})
    line = row.to_json()
    assert "q" not in line and "check" not in line and line["raw"] == "text" and "model_name" not in line
    again = Row.from_json(json.loads(row.to_line()))
    assert again.rejected and again.reason == "bad" and again.raw == "text"


def test_text_takes_string_outputs_in_order():
    row = Row(0, "t", outputs={"b": "second?", "a": "first", "n": 3, "l": ["x", 4, "y"], "d": {"k": "v"}})
    assert row.text() == "second?\nfirst\nx\ny"


@pytest.mark.parametrize("data", [{"task_type": "t"}, {"row": "1", "task_type": "t"}, {"row": 1}, [1, 2]])
def test_from_json_refuses_what_is_not_a_row(data):
    with pytest.raises(ValueError):
        Row.from_json(data)


def test_usage_add_turns_unknown_cost_into_none():
    usage = Usage()
    usage.add(1, 2, 0.5, cached=False)
    usage.add(3, 4, 0.25, cached=True)
    assert usage == Usage(4, 6, 0.75, 1)
    usage.add(1, 1, None, cached=False)
    usage.add(1, 1, 1.0, cached=False)
    assert usage.cost_usd is None and usage.prompt_tokens == 6


def test_read_rows_names_a_corrupt_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(OLD_ROW + "\n\n" + '{"row": 1, "task_type": "x", "S1": "tru' + "\n" + OLD_ROW + "\n", "utf-8")
    rows = read_rows(path)
    assert next(rows).row == 0  # rows before the damage are read
    with pytest.raises(UserError, match=r"data.jsonl line 3 is not a synthkit row .*repair or remove that line"):
        next(rows)


def test_read_rows_names_a_line_that_is_json_but_not_a_row(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(OLD_ROW + "\n" + '{"hello": 1}\n', "utf-8")
    with pytest.raises(UserError, match="line 2"):
        list(read_rows(path))


def test_read_rows_missing_file(tmp_path):
    assert list(read_rows(tmp_path / "nope.jsonl")) == []
    with pytest.raises(UserError, match="nope.jsonl does not exist"):
        list(read_rows(tmp_path / "nope.jsonl", missing_ok=False))


# Deduplicator.


def test_exact_duplicates_ignore_case_space_and_punctuation():
    dedup = Deduplicator()
    assert dedup.add("a", "The quick brown fox.") is None
    assert dedup.add("b", "  the QUICK\nbrown   fox!! ") == "a"
    assert dedup.add("c", "fox") is None and dedup.add("d", "Fox?") == "c"  # short texts too


def test_near_duplicate_decisions_are_the_same_in_every_process():
    """A seed gives the same rows in every run: the MinHash may not depend on Python's per-process hash salt."""
    code = (
        "from synthkit.quality.dedup import Deduplicator\n"
        "print(list(Deduplicator()._minhash('one two three four five six seven'.split()).hashvalues[:8]))"
    )
    signatures = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": salt}, capture_output=True, text=True
        ).stdout
        for salt in ("1", "2")
    }
    assert len(signatures) == 1 and signatures != {""}


def test_near_duplicates_are_found():
    dedup = Deduplicator(threshold=0.8)
    base = "the committee met on tuesday to discuss the new budget for the public library and after a long debate " * 2
    assert dedup.add("a", base + "the members agreed") is None
    assert dedup.add("b", base + "the members agreed firmly") == "a"


@pytest.mark.parametrize("threshold", [0.97, 0.99, 1.0])
def test_a_threshold_near_one_deduplicates(threshold):
    """From 0.97 up, one band holds the whole signature (datasketch refused such an index with a traceback)."""
    dedup = Deduplicator(threshold=threshold)
    base = "the committee met on tuesday to discuss the new budget for the public library "
    assert dedup.add("a", base * 2) is None
    assert dedup.add("b", base * 3) == ("a" if threshold < 1 else None)  # the same 3-grams, another text
    assert dedup.add("c", base + "and then the members went home") is None


def test_distinct_texts_are_not_duplicates():
    dedup = Deduplicator()
    texts = [
        "Retrieve scientific papers that answer a question about protein folding.",
        "Given a recipe name, find recipes from other cuisines with the same main ingredient.",
        "Classify a movie review as positive, negative or mixed.",
        "Find the court decisions that cite a given statute in tax law.",
    ]
    assert [dedup.add(str(i), t) for i, t in enumerate(texts)] == [None] * 4


def test_threshold_one_keeps_only_exact_duplicates():
    dedup = Deduplicator(threshold=1.0)
    assert dedup.add("a", "one two three four five six") is None
    assert dedup.add("b", "one two three four five six seven") is None
    assert dedup.add("c", "One two three four five six") == "a"


# Secrets.


@pytest.fixture
def fresh_secrets(monkeypatch):
    """The environment, restored after the test."""
    yield monkeypatch


def test_redact_blanks_key_variables(fresh_secrets):
    fresh_secrets.setenv("MYSERVICE_API_KEY", "plainvalue-12345")
    fresh_secrets.setenv("SOME_TOKEN", "tokvalue-987654")
    fresh_secrets.setenv("HARMLESS_SETTING", "harmless-value-1")
    text = "key=plainvalue-12345 token=tokvalue-987654 other=harmless-value-1"
    assert secrets.redact(text) == "key=[REDACTED] token=[REDACTED] other=harmless-value-1"


def test_protect_adds_a_variable(fresh_secrets):
    fresh_secrets.setenv("MY_VLLM_CREDS_X", "vllm-secret-value")
    assert "vllm-secret-value" in secrets.redact("using vllm-secret-value")
    secrets.protect("MY_VLLM_CREDS_X")
    assert secrets.redact("using vllm-secret-value") == "using [REDACTED]"


def test_redact_sees_a_key_set_after_the_first_call(fresh_secrets):
    secrets.redact("warm the cache")
    fresh_secrets.setenv("LATE_API_KEY", "late-plain-secret-42")
    assert secrets.redact("late-plain-secret-42") == "[REDACTED]"


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnopqrstu",
        "hf_abcdefghijklmnopqrstuvwxyz",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "AKIAABCDEFGHIJKLMNOP",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ],
)
def test_key_shapes_are_redacted(key, fresh_secrets):
    assert secrets.redact(f"error: bad key {key} for model") == "error: bad key [REDACTED] for model"


def test_bearer_header_and_non_keys():
    assert secrets.redact("Authorization: Bearer abc.def-ghi_jkl012345") == "Authorization: Bearer [REDACTED]"
    for text in ("sk-short", "task-specific-model", "hf_tiny", "the desk-lamp"):
        assert secrets.redact(text) == text


@pytest.mark.parametrize(
    "override", ["llm.api_key=sk-x", "+llm.api_key=x", "++LLM.API_KEY=x", "hydra.job.env_set.OPENAI_API_KEY=x"]
)
def test_refuse_secret_overrides(override):
    with pytest.raises(UserError, match="keys are not taken as overrides"):
        compose.refuse_secret_overrides([override])


def test_allowed_overrides():
    compose.refuse_secret_overrides(["llm.api_key_env=MY_KEY", "task.task=api_key", "num_rows=3"])


def test_the_card_schema_is_the_union_of_the_rows_columns():
    from synthkit.results.schema import infer, merge, yaml_features

    a = {"row": 0, "S1": "x", "attributes": {"low_score": 3, "unit": "phrase"}, "tasks": ["a"]}
    b = {"row": 1, "query": "q", "attributes": {"low_score": 2.5, "num_words": "at least 10"}, "tasks": []}
    c = {"row": 2, "attributes": {"num_words": 50}, "grid": None}
    schema = merge(merge(infer(a), infer(b)), infer(c))
    features = {f["name"]: f for f in yaml_features(schema)}
    assert set(features) == {"row", "S1", "query", "attributes", "tasks", "grid"}
    attributes = {f["name"]: f["dtype"] for f in features["attributes"]["struct"]}
    # ints and floats widen to float; a number in one row and text in another is read as text
    assert attributes == {"low_score": "float64", "unit": "string", "num_words": "string"}
    assert features["tasks"] == {"name": "tasks", "list": "string"} and features["grid"]["dtype"] == "string"


def test_a_file_that_is_not_text_is_one_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"row": 0, "task_type": "t"}\n\xff\xfe\x00binary\n')
    with pytest.raises(UserError, match="is not UTF-8 text"):
        list(read_rows(path))

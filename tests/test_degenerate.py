"""Answers that are not answers (issue 18): the pure rules of synthkit/spec/degenerate.py; good answers of every
packaged task in 15 languages pass every check; the degenerate rows a small model wrote, replayed by the loopback
server, are rejected with a reason naming the check, and the summary shows the share per task type."""

import json
from pathlib import Path

import pytest
from good_answers import DEFINITIONS, GOOD, answer
from helpers import read_jsonl, run_synthkit, server_llm
from omegaconf import OmegaConf

import synthkit
from synthkit.spec.degenerate import (
    TaskContext,
    echo_reason,
    length_reason,
    meta_label_reason,
    placeholder_reason,
    word_bounds,
)
from synthkit.spec.langid import check as check_language
from synthkit.spec.task import TaskSpec

SAMPLE = Path(__file__).with_name("data") / "langid_sample.jsonl"
TASKS = (
    "bitext_retrieval",
    "monolingual_triplet",
    "text_classification",
    "text_retrieval",
    "short_text_matching",
    "long_text_matching",
    "brainstorm",
)
CLASSIFY = TaskContext(
    ("input_text", "label", "misleading_label"),
    ("task", "language", "difficulty", "clarity"),
    '- "input_text": a string, the text to classify.\n- "label": a string, the correct label for input_text.\n'
    "Everything is written in {{ language }}. Answer with the JSON object only, and nothing else.",
)


# The pure rules.


@pytest.mark.parametrize(
    "text, found",
    [
        ("S1", "output key name 'S1'"),
        ("misleading_label", "output key name 'misleading_label'"),
        ("Misleading label", "output key name"),
        ("S1 S2", "made of output key names"),
        ("difficulty", "attribute name 'difficulty'"),
        ("English", "repeats the language"),
        ("a string, the text to classify", "restates the instructions"),
        ("the correct label for input_text", "restates the instructions"),
    ],
)
def test_echoes_are_found(text, found):
    attributes = {"language": "English", "task": "Classify reviews by sentiment."}
    reason = echo_reason(
        text, TaskContext(("S1", "S2", "S3", *CLASSIFY.output_keys), CLASSIFY.attributes, CLASSIFY.prompt), attributes
    )
    assert reason is not None and found in reason, (text, reason)


@pytest.mark.parametrize(
    "text",
    ["The soup was cold and the waiter rude.", "positive", "Answer", "das Essen war kalt", "text classification"],
)
def test_real_text_is_no_echo(text):
    # one or two prompt words ("text classification") can be a real answer; an echo needs three or more
    assert echo_reason(text, CLASSIFY, {"language": "English", "task": "Classify reviews."}) is None


def test_a_label_may_be_a_short_drawn_value_but_not_the_definition():
    attributes = {"language": "English", "task": "Identify the language of a tweet."}
    assert echo_reason("English", CLASSIFY, attributes, label=True) is None
    assert "repeats the task" in echo_reason("Identify the language of a tweet.", CLASSIFY, attributes, label=True)


@pytest.mark.parametrize(
    "text",
    ["...", "…", "N/A", "string", "Text", "TODO", "<text>", "[label]", "Lorem ipsum dolor sit amet", "a", "7", "-"],
)
def test_placeholders_are_found(text):
    assert placeholder_reason(text) is not None


def test_lone_letters_and_numbers_can_be_allowed_and_labels_may_be_numbers():
    assert placeholder_reason("1969", allow=("number",)) is None
    assert placeholder_reason("H", allow=("letter",)) is None
    assert placeholder_reason("H", allow=("number",)) is not None
    assert placeholder_reason("5", label=True) is None and placeholder_reason("none", label=True) is None
    assert placeholder_reason("string", label=True) is not None


@pytest.mark.parametrize(
    "text", ["Label", "label", "category", "positive label", "Misleading_label", "Label 1", "the correct class"]
)
def test_meta_labels_are_found(text):
    assert meta_label_reason(text) is not None


@pytest.mark.parametrize(
    "text", ["positive", "sports", "Class action lawsuit", "labelling", "Sport", "政治", "label fraud"]
)
def test_real_labels_are_not_meta_words(text):
    assert meta_label_reason(text) is None


def test_word_bounds_of_what_an_attribute_asks():
    assert word_bounds("sentence") == (2, 150) and word_bounds("passage") == (8, None)
    assert word_bounds("less than 5 words") == (None, 14)
    assert word_bounds("at least 10 words") == (5, None)
    assert word_bounds("5 to 15 words") == (2, 34)
    assert word_bounds(50) == (25, None)
    assert word_bounds("whatever") == (None, None) and word_bounds(None) == (None, None)


def test_lengths_are_counted_per_script():
    assert "1 word" in length_reason("The", 2, None, "a sentence")
    assert length_reason("图书馆每天早上九点开门。", 2, None, "a sentence") is None  # 11 Han characters ~ 6 words
    assert "too few for a passage" in length_reason("図書館", 8, None, "a passage")
    assert "too many" in length_reason(" ".join(["word"] * 20), None, 14, "less than 5 words")


# Good answers of every packaged task, in 15 languages: no check rejects them.


@pytest.fixture(scope="module")
def specs() -> dict:
    cfgs = {}
    for task in TASKS:
        definition = [f"task.task='{DEFINITIONS[task]}'"] if task in DEFINITIONS else []
        cfg = synthkit.compose(f"task={task}", "llm=mock", *definition)
        cfgs[task] = TaskSpec(OmegaConf.to_container(cfg.task, resolve=True))
    return cfgs


def _failures(spec: TaskSpec, outputs: dict, **attributes) -> list:
    drawn = spec.draw_attributes(0, 0) | attributes
    return [f"{f.name}: {f.message}" for c in spec.checks if (f := c.failure(outputs, drawn))]


@pytest.mark.parametrize("language", sorted(GOOD))
def test_good_answers_pass_every_check_of_every_task(specs, language):
    for unit in ("phrase", "sentence", "passage"):
        bitext = answer("bitext_retrieval", language, unit)
        assert language == "English" or not _failures(
            specs["bitext_retrieval"], bitext, unit=unit, source_language="English", target_language=language
        ), (unit, bitext)
        triple = answer("monolingual_triplet", language, unit)
        assert not _failures(specs["monolingual_triplet"], triple, unit=unit, language=language), (unit, triple)
    for task in ("text_classification", "text_retrieval", "short_text_matching", "long_text_matching"):
        extra = {"num_words": 50} if task == "text_retrieval" else {}
        for query_length in ("less than 5 words", "5 to 15 words") if task == "text_retrieval" else (None,):
            extra |= {"query_length": query_length} if query_length else {}
            outputs = answer(task, language)
            failures = _failures(specs[task], outputs, language=language, task=DEFINITIONS[task], **extra)
            assert not failures, (task, failures)


def test_no_text_of_the_language_sample_is_degenerate_as_its_unit(specs):
    # tests/data/langid_sample.jsonl: 320 phrases, sentences and paragraphs in the XLM-R languages
    spec = specs["monolingual_triplet"]
    sample = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    unit = {"phrase": "phrase", "sentence": "sentence", "paragraph": "passage"}
    rejected = []
    for r in sample:
        attributes = spec.draw_attributes(0, 0) | {"unit": unit[r["kind"]], "language": r["lang"]}
        texts = {"S1": r["text"], "S2": r["text"], "S3": r["text"]}
        rejected += [
            (r["text"], f.message) for c in spec.checks if c.degenerate and (f := c.failure(texts, attributes))
        ]
    assert len(sample) == 320 and rejected == []


def test_good_brainstorm_answers_pass(specs):
    assert not _failures(specs["brainstorm"], answer("brainstorm", "English"))
    assert "an item of tasks" in _failures(specs["brainstorm"], {"tasks": ["Find news.", "...", "Given a x"]})[0]


def test_short_phrases_in_the_right_language_are_not_called_wrong():
    for language, g in GOOD.items():
        for text in (g["phrase"], g["query"], *g["labels"]):
            assert check_language(text, language).status != "wrong", (language, text)


# The issue's table, replayed by the loopback server.


def _text(**fields) -> str:
    return "text:" + json.dumps(fields, ensure_ascii=False)


REVIEW = "The battery died after two days and the support line never answered my calls."
CLASSIFY_ARGS = ["task=text_classification", "task.task=Classify product reviews by sentiment"]
# (overrides, loopback plan, the checks that must reject its planted answers): the issue's table in three runs.
ISSUE_TABLE = [
    (  # bitext, a cell per unit: each unit's prompt gets its planted answer first
        ["grid=[unit]"],
        {
            "rules": [
                {"match": "Write a passage triple", "sequence": [_text(S1="S1", S2="S2", S3="S3"), "valid"]},
                {"match": "Write a phrase triple", "sequence": [_text(S1="a", S2="b", S3="c"), "valid"]},
                {"match": "Write a sentence triple", "sequence": [_text(S1="The", S2="are", S3="ing"), "valid"]},
            ]
        },
        ["echo", "length", "placeholder"],
    ),
    (  # German asked for English: short, and still caught
        ["task.unit=phrase", "task.target_language=German"],
        {"first": [_text(S1="Schlechte Musik", S2="Miese Musik", S3="Gute Musik")]},
        ["language"],
    ),
    (
        [*CLASSIFY_ARGS, "num_rows=3"],
        {
            "first": [
                _text(
                    input_text="a sentence to classify",
                    label="a string for this task that fits this label",
                    misleading_label="another label",
                ),
                _text(input_text=REVIEW, label="Label", misleading_label="Misleading_label"),
                _text(input_text=REVIEW, label="misleading_label", misleading_label="label"),
            ]
        },
        ["echo", "label", "label"],
    ),
]


def test_the_issue_table_is_rejected_naming_the_check(openai_server, tmp_path):
    server = openai_server()
    for n, (args, plan, checks) in enumerate(ISSUE_TABLE):
        server.set_plan(plan)
        out = tmp_path / f"case{n}"
        result = run_synthkit(
            *server_llm(server), "num_rows=1", "max_attempts=1", "cache=false", f"output_dir={out}", *args, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        rejects = read_jsonl(out / "rejects.jsonl")
        assert sorted(r["check"] for r in rejects) == checks, (plan, rejects)
        assert all(r["reason"].startswith(f"check {r['check']}: ") for r in rejects), rejects
        assert len(read_jsonl(out / "data.jsonl")) == len(checks)  # the refills, good answers, are written


def test_the_summary_shows_the_share_of_degenerate_answers(openai_server, tmp_path):
    # Every first ask of a row is the echo; its re-ask is a good answer: 4 of 8 answers were not answers.
    server = openai_server(plan={"default": [_text(S1="S1", S2="S2", S3="S3"), "valid"]})
    args = ("num_rows=4", "max_attempts=2", "task.unit=passage", f"output_dir={tmp_path / 'run'}")
    result = run_synthkit(*server_llm(server), *args, cwd=tmp_path, card=True)
    assert result.returncode == 0, result.stderr
    assert (
        "degenerate answers (not answers: echoes, placeholders...): bitext_retrieval 4 of 8 answers (50%: echo 4)"
        in (result.stdout)
    )
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert "were not answers" in card and "bitext_retrieval 4 of 8 answers (50%: echo 4)" in card
    reask = next(r["body"]["messages"][2]["content"] for r in server.requests() if len(r["body"]["messages"]) == 3)
    assert "check echo: S1: it is the output key name 'S1'" in reask


LANGUAGE_OF = {  # one language per task, so the loopback runs together cover seven
    "bitext_retrieval": "Japanese",
    "monolingual_triplet": "Arabic",
    "text_classification": "German",
    "text_retrieval": "Hindi",
    "short_text_matching": "Korean",
    "long_text_matching": "Russian",
    "brainstorm": "English",
}


def test_good_answers_of_all_seven_tasks_are_written_through_the_server(openai_server, tmp_path):
    server = openai_server()
    for task, language in LANGUAGE_OF.items():
        args = [f"task={task}"]
        if task == "bitext_retrieval":
            args += ["task.source_language=English", f"task.target_language={language}", "task.unit=sentence"]
        elif task == "monolingual_triplet":
            args += [f"task.language={language}", "task.unit=sentence"]
        elif task != "brainstorm":
            args += [f"task.language={language}", f"task.task='{DEFINITIONS[task]}'"]
        if task == "text_retrieval":
            args += ["task.num_words=50", "task.query_length=less than 5 words"]
        outputs = answer(task, language)
        planted = "text:" + json.dumps(outputs["tasks"] if task == "brainstorm" else outputs, ensure_ascii=False)
        server.set_plan({"default": [planted]})
        out = tmp_path / task
        result = run_synthkit(
            *server_llm(server), "num_rows=1", "max_attempts=1", f"output_dir={out}", *args, cwd=tmp_path
        )
        assert result.returncode == 0, (task, result.stderr)
        assert not read_jsonl(out / "rejects.jsonl"), (task, read_jsonl(out / "rejects.jsonl"))
        assert len(read_jsonl(out / "data.jsonl")) == 1, task

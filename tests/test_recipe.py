"""The whole recipe: the seven task YAMLs, brainstorm -> generate, the paper preset, the language
mix and the allocated e5 mixture, through the CLI."""

import json
from collections import Counter

import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

# Each task with every attribute fixed, and what its prompt must then say (spec §2).
PROMPTS = {
    "brainstorm": (
        ["task.category=text-retrieval"],
        [
            "text retrieval tasks",
            "what the query is and what the desired documents are",
            "wide range of queries",
            "scientific claim",
            "nutrition for children",
            "one sentence",
            "about 20",
            "JSON list",
            "do not explain yourself",
            "Be creative!",
        ],
    ),
    "text_retrieval": (
        [
            "task.task=Find recipes for a dish",
            "task.language=Swahili",
            "task.query_type=long-tail",
            "task.query_length=5 to 15 words",
            "task.difficulty=PhD",
            "task.clarity=ambiguous",
            "task.num_words=300",
        ],
        [
            "Find recipes for a dish",
            "long-tail, 5 to 15 words, ambiguous, and diverse in topic",
            "written independently of the query",
            "do not copy the query into it word for word",
            "may be off the topic of the query",
            "at least 300 words",
            "less useful or less complete",
            "written in Swahili",
            "Do not explain inside any document",
            "PhD level education",
            "user_query",
            "positive_document",
            "hard_negative_document",
            "JSON object only",
        ],
    ),
    "short_text_matching": (
        ["task.task=Match a word to its definition", "task.language=German"],
        [
            "Match a word to its definition",
            "very short",
            "a sentence or a phrase",
            "avoid substantial word overlap",
            "independently",
            "written in German",
            "input",
            "positive_document",
            "JSON object only",
        ],
    ),
    "long_text_matching": (
        ["task.task=Match an argument to its rebuttal", "task.language=French"],
        [
            "Match an argument to its rebuttal",
            "long documents of at least 300 words",
            "avoid substantial word overlap",
            "independently",
            "written in French",
            "JSON object only",
        ],
    ),
    "text_classification": (
        [
            "task.task=Classify reviews by sentiment",
            "task.language=Polish",
            "task.difficulty=PhD",
            "task.clarity=clear",
        ],
        [
            "Classify reviews by sentiment",
            "input_text is clear",
            "PhD level education",
            "misleading_label",
            "a valid label of this same task",
            "less well",
            "Neither label appears in input_text",
            "diverse in its expression",
            "written in Polish",
            "JSON object only",
        ],
    ),
    "monolingual_triplet": (
        [
            "task.language=Japanese",
            "task.unit=passage",
            "task.difficulty=college",
            "task.high_score=4.5",
            "task.low_score=2.5",
        ],
        [
            "passage triple",
            "passage in Japanese",
            "1 is the least similar and 5 the most similar",
            "between S1 and S2 is 4.5",
            "between S1 and S3 is 2.5",
            "share some words",
            "college level education",
            "diverse topics and lengths",
            '"S1", "S2" and "S3"',
            "Be creative!",
        ],
    ),
    "bitext_retrieval": (
        [
            "task.source_language=Thai",
            "task.target_language=Welsh",
            "task.unit=phrase",
            "task.difficulty=elementary school",
            "task.high_score=5",
            "task.low_score=3.5",
        ],
        [
            "phrase in Thai",
            "phrases in Welsh",
            "higher is better",
            "S2 scores 5",
            "S3 scores 3.5",
            "share some words",
            "grammatical and fluent",
            "mistranslates keywords or numbers",
            "leaves some information out, or adds information",
            "elementary school level education",
            '"S1", "S2" and "S3"',
            "Be creative!",
        ],
    ),
}


# The keys each task's answer must hold (spec §2), in order.
OUTPUT_KEYS = {
    "brainstorm": ["tasks"],
    "text_retrieval": ["user_query", "positive_document", "hard_negative_document"],
    "short_text_matching": ["input", "positive_document"],
    "long_text_matching": ["input", "positive_document"],
    "text_classification": ["input_text", "label", "misleading_label"],
    "monolingual_triplet": ["S1", "S2", "S3"],
    "bitext_retrieval": ["S1", "S2", "S3"],
}


@pytest.mark.parametrize("task", PROMPTS)
def test_every_prompt_carries_its_attributes_instructions_and_output_keys(task, tmp_path):
    overrides, needles = PROMPTS[task]
    result = run_synthkit(f"task={task}", "llm=mock", "dry_run=true", "num_rows=3", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    prompt, rest = result.stdout.split("prompt of row 0:")[1].split("schema of the answer:")
    missing = [n for n in needles if n not in prompt]
    assert missing == [], prompt
    # The same dry run shows the answer's schema: its output keys follow the spec.
    schema = json.loads(rest.split("\n\n")[0])
    assert schema["required"] == OUTPUT_KEYS[task]


def test_brainstorm_answers_are_lists_or_rejects(openai_server, tmp_path):
    attack = "__import__('os').system('touch pwned')"
    server = openai_server(
        plan={
            "default": [
                'text:["Retrieve laws for a legal question", "Find papers that support a claim"]',
                f"text:{attack}",
                "text:Sure! ['Retrieve recipes for a dish', 'Find reviews of a product']",
                "text:Here they are:\n1. Retrieve  LAWS for a legal question\n2. Find forum posts that solve a bug",
            ]
        }
    )
    out = tmp_path / "run"
    result = run_synthkit(
        "task=brainstorm",
        "task.category=text-retrieval",
        "task.flatten_tasks=true",
        *server_llm(server),
        "num_rows=3",
        "max_attempts=1",
        "concurrency=1",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = sorted(read_jsonl(out / "data.jsonl"), key=lambda r: r["row"])
    assert [r["tasks"] for r in rows] == [
        ["Retrieve laws for a legal question", "Find papers that support a claim"],
        ["Retrieve recipes for a dish", "Find reviews of a product"],
        ["Retrieve  LAWS for a legal question", "Find forum posts that solve a bug"],
    ]
    rejects = read_jsonl(out / "rejects.jsonl")
    assert [r["row"] for r in rejects] == [1] and "no list" in rejects[0]["reason"] and rejects[0]["raw"] == attack
    assert not (tmp_path / "pwned").exists()
    # Flattened: one row per distinct definition; the case/space variant is dropped.
    flat = read_jsonl(out / "tasks.jsonl")
    assert [f["task"] for f in flat] == [
        "Retrieve laws for a legal question",
        "Find papers that support a claim",
        "Retrieve recipes for a dish",
        "Find reviews of a product",
        "Find forum posts that solve a bug",
    ]
    assert [f["brainstorm_row"] for f in flat] == [0, 0, 2, 2, 3] and flat[0]["category"] == "text-retrieval"


def test_one_command_brainstorms_then_generates(openai_server, tmp_path):
    server = openai_server()
    out = tmp_path / "run"
    result = run_synthkit(
        "task=text_retrieval", *server_llm(server), "num_rows=8", "brainstorm_rows=2", f"output_dir={out}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    brainstorm = read_jsonl(out / "brainstorm" / "data.jsonl")
    assert len(brainstorm) == 2 and all(b["category"] == "text-retrieval" for b in brainstorm)
    definitions = {t: b["row"] for b in brainstorm for t in b["tasks"]}
    assert len(definitions) == 4  # the server lists two per answer
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 8
    for r in rows:
        assert definitions[r["attributes"]["task"]] == r["brainstorm_row"]
        assert r["user_query"] and r["hard_negative_document"]
    assert set(Counter(r["attributes"]["task"] for r in rows).values()) == {2}  # each definition its share
    prompts = [q["body"]["messages"][0]["content"] for q in server.requests()]
    assert sum("Brainstorm a list" in p for p in prompts) == 2
    assert "brainstorm: 2 answers, 4 task definitions (0 duplicates dropped)" in result.stdout


def test_generate_from_an_earlier_brainstorm_output(openai_server, tmp_path):
    server = openai_server(
        plan={
            "default": [
                'text:["Match a word to its definition", "match a WORD to its definition",'
                ' "Match a city to its country"]'
            ]
        }
    )
    first = run_synthkit(
        "task=brainstorm",
        "task.category=text-matching-short",
        *server_llm(server),
        "num_rows=1",
        f"output_dir={tmp_path / 'b'}",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    server.set_plan({"default": ["valid"]})
    out = tmp_path / "run"
    result = run_synthkit(
        "task=short_text_matching",
        f"task.task=file:{tmp_path / 'b' / 'data.jsonl'}",
        *server_llm(server),
        "num_rows=4",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = sorted(read_jsonl(out / "data.jsonl"), key=lambda r: r["row"])
    assert [r["attributes"]["task"] for r in rows] == [
        "Match a word to its definition",
        "Match a city to its country",
    ] * 2
    assert all(r["brainstorm_row"] == 0 and r["brainstorm_file"].endswith("data.jsonl") for r in rows)


def test_paper_preset_switches_domains(tmp_path):
    def dry(*args: str) -> str:
        result = run_synthkit("llm=mock", "dry_run=true", "num_rows=300", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    seed, paper = dry("task=bitext_retrieval"), dry("task=bitext_retrieval", "preset=paper")
    assert "low_score        2.5" in seed.replace("3.5", "2.5") and "1.5" not in seed.split("prompt of row 0")[0]
    draws = paper.split("low_score")[1].splitlines()[0]
    assert {v for v in ("1.5", "2 ", "2.5") if v in draws + " "} == {"1.5", "2 ", "2.5"} and "3.5" not in draws
    classify = dry("task=text_classification", "task.task=Classify news", "preset=paper")
    assert "num_words" in classify and " words." in classify.split("prompt of row 0:")[1]
    assert "num_words" not in dry("task=text_classification", "task.task=Classify news")
    refused = run_synthkit("llm=mock", "task.low_score=1.5", cwd=tmp_path)
    assert_one_line_error(refused, "task.low_score=1.5 is not allowed", "2.5, 3, 3.5")


def test_the_weighted_language_mix(tmp_path):
    result = run_synthkit(
        "llm=mock",
        "task=monolingual_triplet",
        "task.language=null",
        "task.domains.language=${languages.e5_mix}",
        "dry_run=true",
        "num_rows=5000",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.split("  language")[1].splitlines()[0]
    counts = dict((name.strip(), int(n)) for name, n in (item.rsplit(" ", 1) for item in line.split(",")[:2]))
    assert abs(counts["English"] / 5000 - 0.431) < 0.02 and "(93 values)" in line


def test_recipe_e5_allocates_the_papers_mixture(tmp_path):
    out = tmp_path / "run"
    result = run_synthkit("recipe=e5", "llm=mock", "num_rows=2000", f"output_dir={out}", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 2000 and len({(r["cell"], r["row"]) for r in rows}) == 2000
    paper = {
        "text_retrieval": 167,
        "text_classification": 122,
        "monolingual_triplet": 99,
        "bitext_retrieval": 89,
        "long_text_matching": 17,
        "short_text_matching": 13,
    }
    shares = Counter(r["task_type"] for r in rows)
    for task, thousands in paper.items():
        assert abs(shares[task] / 2000 - thousands / sum(paper.values())) <= 0.01, (task, shares[task])
    english = sum(r["attributes"].get("language", r["attributes"].get("source_language")) == "English" for r in rows)
    assert abs(english / 2000 - 0.431) <= 0.01
    assert all(
        r["attributes"]["target_language"] != r["attributes"]["source_language"]
        for r in rows
        if r["task_type"] == "bitext_retrieval"
    )
    assert all("brainstorm_row" in r for r in rows if r["task_type"] in ("text_retrieval", "text_classification"))
    assert len(read_jsonl(out / "brainstorm" / "data.jsonl")) >= 4


def test_recipe_refills_rejected_rows_until_counts_are_met(openai_server, tmp_path):
    # A third of the answers break the schema: with one attempt per row, those rows are rejected and refilled.
    server = openai_server(plan={"faults": {"rate": 0.33, "steps": ["missing_key"], "seed": 5}})
    out = tmp_path / "run"
    result = run_synthkit(
        "recipe=e5", *server_llm(server), "num_rows=60", "max_attempts=1", f"output_dir={out}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows, rejects = read_jsonl(out / "data.jsonl"), read_jsonl(out / "rejects.jsonl")
    counts = Counter(r["task_type"] for r in rows)
    assert dict(counts) == {
        "text_retrieval": 20,
        "text_classification": 14,
        "monolingual_triplet": 12,
        "bitext_retrieval": 10,
        "long_text_matching": 2,
        "short_text_matching": 2,
    }
    assert len(rejects) >= 10 and all("required property" in r["reason"] for r in rejects)

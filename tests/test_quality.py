"""Quality gates: planted bad answers from the loopback server are rejected with the check's
name; duplicates are caught within a run, across a sweep and in a brainstormed pool."""

import json
import re
from collections import Counter

from helpers import read_jsonl, run_synthkit, server_llm

from synthkit.results.card import _recipe_languages, write_card

ENGLISH = (
    "The committee approved the new budget after a long debate about schools, roads and hospitals "
    "in the northern districts of the country."
)
GERMAN = (
    "Der Ausschuss genehmigte den neuen Haushalt nach einer langen Debatte über Schulen, Straßen und "
    "Krankenhäuser in den nördlichen Bezirken des Landes."
)
LONG = " ".join(str(1000 + i) for i in range(120))  # long, and no language to identify
SHORT_QUERY = "task.query_length=less than 5 words"  # the planted queries are short: their length check passes


def _answer(**fields) -> str:
    return "text:" + json.dumps(fields)


def _rejects(server, tmp_path, name, *args):
    out = tmp_path / name
    result = run_synthkit(
        *server_llm(server), "num_rows=1", "max_attempts=1", "cache=off", f"output_dir={out}", *args, cwd=tmp_path
    )
    return result, read_jsonl(out / "rejects.jsonl")


def test_planted_bad_answers_are_rejected_with_their_check(openai_server, tmp_path):
    server = openai_server()
    cases = [
        # bitext asked English -> German, S2 came back in English
        (
            "language",
            ["task.source_language=English", "task.target_language=German"],
            _answer(S1=ENGLISH, S2=ENGLISH.replace("long", "lengthy"), S3=GERMAN),
        ),
        # the hard negative copies the positive
        (
            "distinct",
            ["task=text_retrieval", "task.task=Find budget news", "task.num_words=50", SHORT_QUERY],
            _answer(user_query="budget news", positive_document=LONG, hard_negative_document=LONG),
        ),
        # the label is written into the text
        (
            "label_in_text",
            ["task=text_classification", "task.task=Classify news by topic"],
            _answer(input_text="Sports: the home team won the final", label="sports", misleading_label="politics"),
        ),
        # documents far shorter than num_words asks
        (
            "min_words",
            ["task=text_retrieval", "task.task=Find budget news", "task.num_words=200", SHORT_QUERY],
            _answer(user_query="budget news", positive_document="Too short.", hard_negative_document="Also short."),
        ),
        # the query copied into a document
        (
            "query_copied",
            ["task=text_retrieval", "task.task=Find budget news", "task.num_words=50", SHORT_QUERY],
            _answer(
                user_query="city budget vote",
                positive_document=LONG + " city budget vote",
                hard_negative_document=LONG.replace("10", "40"),
            ),
        ),
    ]
    for check, args, answer in cases:
        server.set_plan({"first": [answer]})
        result, rejects = _rejects(server, tmp_path, check, *args)
        assert result.returncode == 0, result.stderr
        assert len(rejects) == 1 and rejects[0]["check"] == check, (check, rejects)
        assert rejects[0]["reason"].startswith(f"check {check}: ")


def test_reask_is_configurable_per_check(openai_server, tmp_path):
    server = openai_server(plan={"default": [_answer(S1=ENGLISH, S2=ENGLISH, S3=GERMAN), "valid"]})
    out = tmp_path / "reasked"
    result = run_synthkit(
        *server_llm(server),
        "task.target_language=German",
        "num_rows=1",
        "max_attempts=2",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert rows[0]["attempts"] == 2 and "check language" in server.requests()[1]["body"]["messages"][2]["content"]

    (tmp_path / "conf" / "task").mkdir(parents=True)
    task = tmp_path / "conf" / "task" / "strict.yaml"
    task.write_text(
        "name: strict\nlanguage: English\ndomains: {language: [English]}\n"
        "output: {text: string, label: string}\n"
        "checks:\n  - {check: not_contained, needles: [label], fields: [text], reask: false}\n"
        "prompt: Write a text and its label in {{ language }} as JSON.\n"
    )
    server.set_plan({"default": [_answer(text="a sports story", label="sports"), "valid"]})
    out = tmp_path / "strict"
    result = run_synthkit(
        "--config-dir",
        str(tmp_path / "conf"),
        "task=strict",
        *server_llm(server),
        "num_rows=1",
        "max_attempts=3",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rejects = read_jsonl(out / "rejects.jsonl")
    assert len(rejects) == 1 and rejects[0]["attempts"] == 1 and rejects[0]["check"] == "not_contained"


def test_duplicates_within_a_run_are_replaced_and_counted(openai_server, tmp_path):
    first = _answer(S1=LONG, S2=LONG.replace("10", "20"), S3=LONG.replace("10", "30"))
    near = _answer(S1=LONG.replace("1007 ", "7001 "), S2=LONG.replace("10", "20"), S3=LONG.replace("10", "30"))
    server = openai_server(plan={"faults": {"rate": 0.3, "steps": [first, near], "seed": 4}})
    out = tmp_path / "run"
    # passages: the planted 120-word answers are too long for a phrase (the length check)
    args = ("num_rows=20", "max_attempts=3", "task.unit=passage", f"output_dir={out}")
    result = run_synthkit(*server_llm(server), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 20
    texts = [r["S1"] for r in rows]
    assert len(set(texts)) == 20 and sum(t.startswith("1000 1001") for t in texts) == 1  # one of the planted pair
    planted = server.stats()["by_step"]["text"]
    assert planted >= 3 and f"duplicates: {planted - 1} answers" in result.stdout


def test_a_merged_sweep_drops_rows_repeated_across_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_synthkit("-m", "llm=mock", "seed=0,0,1", "num_rows=5", f"output_dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(sweep / "data.jsonl")) == 10
    assert "10 rows merged into" in result.stdout and "(5 duplicates dropped)" in result.stdout


def test_near_duplicate_definitions_are_dropped_from_the_pool(openai_server, tmp_path):
    server = openai_server(
        plan={
            "first": [
                'text:["Retrieve news articles that report on a given company.", "retrieve NEWS articles that report on a'
                ' given company", "Find recipes for a dish"]'
            ]
        }
    )
    out = tmp_path / "run"
    result = run_synthkit(
        "task=short_text_matching",
        *server_llm(server),
        "num_rows=4",
        "brainstorm_rows=1",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "2 task definitions (1 duplicates dropped)" in result.stdout


def test_the_dataset_card(openai_server, tmp_path):
    server = openai_server(plan={"first": [_answer(S1=ENGLISH, S2=ENGLISH, S3=GERMAN)]})
    out = tmp_path / "run"
    result = run_synthkit(
        *server_llm(server, model="openai/gpt-4o-mini"),
        "task.target_language=German",
        "num_rows=6",
        "max_attempts=1",
        f"output_dir={out}",
        cwd=tmp_path,
        card=True,
    )
    assert result.returncode == 0, result.stderr
    card = (out / "README.md").read_text()
    assert f"dataset card: {out / 'README.md'}" in result.stdout
    front = card.split("---")[1]
    assert "language: [de, en]" in front and "size_categories: [n<1K]" in front
    for section in (
        "## Configuration",
        "## Models",
        "## Rows",
        "### Per language",
        "## Rejects",
        "## Tokens and cost",
        "## Distributions",
        "### Language check",
    ):
        assert section in card, section
    assert "stopped before it was complete" not in card
    # Values per task type in their domain's order, with rows and rejects each.
    units = card.split("**bitext_retrieval: unit**")[1]
    assert units.index("| sentence |") < units.index("| phrase |") < units.index("| passage |")
    # Rows expected from the drawn shares (three units, uniform: 2 of the 6 rows each) beside the rows made.
    assert "| value | expected rows | rows | vs expected | rejects | reject rate |" in units
    made = Counter(r["attributes"]["unit"] for r in read_jsonl(out / "data.jsonl"))
    for unit in ("sentence", "phrase", "passage"):
        versus = "=" if abs(made[unit] - 2) < 1 else f"{'▲' if made[unit] > 2 else '▼'} {made[unit] / 2 - 1:+.0%}"
        assert f"| {unit} | 2.0 | {made[unit]} | {versus} |" in units
    # The planted English S2 was judged wrong once; the server's digit strings have no language to judge.
    assert "| wrong | 1 |" in card and "unchecked:no_language" in card
    assert "task.target_language=German" in card and "| openai/gpt-4o-mini | 6 |" in card
    assert "| language | 1 |" in card  # the planted answer's reject, by check name
    rows = read_jsonl(out / "data.jsonl")
    cost = sum(r["usage"]["cost_usd"] for r in rows + read_jsonl(out / "rejects.jsonl"))
    assert f"${cost:.4f}" in card
    for plot in ("plots/attributes.png", "plots/text_lengths.png"):
        assert f"]({plot})" in card and (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    sweep = tmp_path / "sweep"  # a card per job and one for the merged rows: one row a job keeps their plots few
    result = run_synthkit(
        "-m", "llm=mock", "task.unit=sentence,phrase", "num_rows=1", f"output_dir={sweep}", cwd=tmp_path, card=True
    )
    assert result.returncode == 0 and "PLACEHOLDER" in (sweep / "README.md").read_text()


def _visible(card: str) -> list:
    """The card's lines a reader sees unfolded: outside <details> blocks and the front matter."""
    body = card.split("\n---\n", 1)[1]
    return re.sub(r"<details>.*?</details>", "", body, flags=re.S).splitlines()


def test_the_recipe_card_folds_its_cells_and_shows_the_languages_off_their_share(tmp_path):
    out = tmp_path / "run"
    result = run_synthkit("recipe=e5", "llm=mock", "num_rows=400", f"output_dir={out}", cwd=tmp_path, card=True)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    card = (out / "README.md").read_text(encoding="utf-8")
    assert len(_visible(card)) < 400 < len(card.splitlines())  # the config and the cells folded away
    assert "<details><summary>Resolved config</summary>" in card
    # Cells: per task type, how many and their spread; the cells themselves one line per language, folded.
    cells = Counter(r["cell"] for r in rows)
    retrieval = sorted(n for c, n in cells.items() if c.startswith("text_retrieval/"))
    line = f"| text_retrieval | {sum(retrieval)} | {len(retrieval)} | {retrieval[0]} / "
    assert line + f"{retrieval[len(retrieval) // 2]} / {retrieval[-1]} |" in card
    assert f"<details><summary>Rows per cell ({len(cells)} cells)</summary>" in card
    english = [cells.get(f"{t}/English", "") for t in ("text_retrieval", "text_classification")]
    assert f"| English | {english[0]} | {english[1]} |" in card and "| text_retrieval/English |" not in card
    # Every language is on its allocated count: the largest are shown, not alphabetical 1-row ones.
    section = card.split("**text_retrieval: language**")[1].split("\n\n**")[0]
    assert "every one is on its expected rows" in section and section.index("| English |") < section.index("| Polish |")
    share = 43.1 / (43.1 + 3.0 + 2.9 * 6 + 2.8 * 5 + 2.7 + 0.2506 * 79)
    assert f"| English | {share * sum(retrieval):.1f} | {cells['text_retrieval/English']} | = |" in section
    # A language starved of rows (as a model that fails it would leave it) comes first, marked.
    kept = [r for r in rows if r["cell"] != "text_retrieval/Polish"]
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    write_card(out)
    card = (out / "README.md").read_text(encoding="utf-8")
    section = card.split("**text_retrieval: language**")[1].split("\n\n**")[0]
    assert "(the 15 of 93 values furthest from their expected rows)" in section
    first = section.split("|---|---|---|---|---|---|\n")[1].splitlines()[0]
    assert first.startswith("| Polish | ") and "| 0 | ▼ -100% |" in first
    # bitext's target language is drawn from the recipe's mix, never the source's language: expected accordingly.
    recipe = {
        "languages": {"values": ["English", "de"], "weights": [3, 1]},  # one name per language: de is German
        "shares": {"bitext_retrieval": 1},
        "language_attribute": {"bitext_retrieval": "source_language"},
        "tasks": {"bitext_retrieval": {"target_language": None, "domains": {"target_language": {
            "values": ["English"], "differs_from": "source_language"}}}},
    }  # fmt: skip
    assert _recipe_languages(recipe) == {
        "bitext_retrieval": {
            "source_language": {"English": 0.75, "German": 0.25},
            "target_language": {"English": 0.25, "German": 0.75},  # the other one of a pair
        }
    }

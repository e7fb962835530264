"""synthkit export: a run's rows as E5 rows, a sentence-transformers dataset and FlagEmbedding JSONL."""

import json
import shutil
from pathlib import Path

import datasets
import pytest
from helpers import assert_one_line_error, read_jsonl, run_synthkit, server_llm

from synthkit.errors import UserError


def export(source, *args, cwd, placeholder=True):
    """`placeholder`: the llm=mock runs here are placeholder rows, which export refuses without the flag.
    In this process (as the user's `synthkit export` runs it, exit code and stderr included): a subprocess
    would pay for Python and `datasets` again on every call."""
    flag = ["--allow-placeholder"] if placeholder else []
    return run_synthkit("export", str(source), *map(str, args), *flag, cwd=cwd)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """A small recipe run: all six trainable task types (the smallest, the matching ones, 3 rows each: enough
    for one row's negative to be another's positive), plus a brainstorm stage."""
    cwd = tmp_path_factory.mktemp("recipe")
    result = run_synthkit("recipe=e5", "llm=mock", "num_rows=100", f"output_dir={cwd / 'run'}", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "run", {(r["cell"], r["row"]): r for r in read_jsonl(cwd / "run" / "data.jsonl")}


def test_e5_rows_follow_the_papers_mapping(recipe_run, tmp_path):
    run, rows = recipe_run
    result = export(run, "--to", "e5", "--out", tmp_path / "e5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    examples = read_jsonl(tmp_path / "e5" / "e5.jsonl")
    assert len(examples) == len(rows)
    keys = {
        "text_retrieval": ("user_query", "positive_document", "hard_negative_document"),
        "text_classification": ("input_text", "label", "misleading_label"),
        "short_text_matching": ("input", "positive_document", None),
        "long_text_matching": ("input", "positive_document", None),
        "monolingual_triplet": ("S1", "S2", "S3"),
        "bitext_retrieval": ("S1", "S2", "S3"),
    }
    by_query = {e["query"]: e for e in examples}
    for r in rows.values():
        q, p, n = keys[r["task_type"]]
        e = by_query[r[q]]
        assert e["positive"] == r[p] and e["negative"] == (r[n] if n else None)
        expected = {
            "monolingual_triplet": "Retrieve semantically similar text.",
            "bitext_retrieval": "Retrieve parallel sentences.",
        }.get(r["task_type"], r["attributes"].get("task"))
        assert e["instruction"] == expected
    assert list(examples[0]) == ["instruction", "query", "positive", "negative"]


ST_COLUMNS = {
    "text_retrieval": ["anchor", "positive", "negative"],
    "bitext_retrieval": ["anchor", "positive", "negative"],
    "short_text_matching": ["anchor", "positive"],
    "long_text_matching": ["anchor", "positive"],
    "text_classification": ["anchor", "positive", "negative"],
    "monolingual_triplet": ["sentence1", "sentence2", "score"],
}


def test_sentence_transformers_export_is_one_dataset_per_task_type(recipe_run, tmp_path):
    run, rows = recipe_run
    result = export(run, "--to", "sentence-transformers", "--out", tmp_path / "st", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sets = datasets.load_from_disk(str(tmp_path / "st"))
    assert {name: d.column_names for name, d in sets.items()} == ST_COLUMNS
    by_type = {t: [r for r in rows.values() if r["task_type"] == t] for t in ST_COLUMNS}
    for name, dataset in sets.items():
        assert len(dataset) == len(by_type[name]) * (2 if name == "monolingual_triplet" else 1)
    # STS: (S1, S2, high) and (S1, S3, low), the 1-5 scores scaled to [0, 1].
    sts = sets["monolingual_triplet"]
    expected = [
        (r["S1"], text, (r["attributes"][score] - 1) / 4)
        for r in by_type["monolingual_triplet"]
        for text, score in ((r["S2"], "high_score"), (r["S3"], "low_score"))
    ]
    assert sorted(zip(sts["sentence1"], sts["sentence2"], sts["score"])) == sorted(expected)
    # The instruction: the trainer's prompts where a task type shares one, the anchor's text where rows differ.
    manifest = json.loads((tmp_path / "st" / "training.json").read_text(encoding="utf-8"))["datasets"]
    sts_prompt = "Instruct: Retrieve semantically similar text.\nQuery: "  # both sides: STS is symmetric
    assert manifest["monolingual_triplet"]["prompts"] == {"sentence1": sts_prompt, "sentence2": sts_prompt}
    assert manifest["bitext_retrieval"]["prompts"] == {"anchor": "Instruct: Retrieve parallel sentences.\nQuery: "}
    assert set(sets["bitext_retrieval"]["anchor"]) == {r["S1"] for r in by_type["bitext_retrieval"]}
    definitions = {r["attributes"]["task"] for r in by_type["text_retrieval"]}
    assert len(definitions) > 1 and "prompts" not in manifest["text_retrieval"]
    assert all(a.startswith("Instruct: ") and "\nQuery: " in a for a in sets["text_retrieval"]["anchor"])
    # The loss each wants; classification marked: its rows' labels repeat, so no in-batch negatives.
    assert {n: (m["loss"], m["in_batch_negatives"]) for n, m in manifest.items()} == {
        "text_retrieval": ("MultipleNegativesRankingLoss", True),
        "bitext_retrieval": ("MultipleNegativesRankingLoss", True),
        "short_text_matching": ("MultipleNegativesRankingLoss", True),
        "long_text_matching": ("MultipleNegativesRankingLoss", True),
        "text_classification": ("TripletLoss", False),
        "monolingual_triplet": ("CoSENTLoss", False),
    }
    labels = {(r["input_text"], r["label"], r["misleading_label"]) for r in by_type["text_classification"]}
    classification = sets["text_classification"]
    assert {(a.split("\nQuery: ")[1], p, n) for a, p, n in zip(*classification.to_dict().values())} == labels


def test_sentence_transformers_instruction_as_a_column_or_in_the_anchor(recipe_run, tmp_path):
    from synthkit.results.export import to_examples
    from synthkit.results.rundir import RunDir
    from synthkit.results.training_sets import TrainingSets, st_datasets

    run, rows = recipe_run
    assert export(run, "--to", "sentence-transformers", "--instruction", "column", "--out", tmp_path / "c",
                  cwd=tmp_path).returncode == 0  # fmt: skip
    column = datasets.load_from_disk(str(tmp_path / "c"))
    retrieval = column["text_retrieval"]
    assert retrieval.column_names == ["anchor", "positive", "negative", "instruction"]
    source = {r["user_query"]: r for r in rows.values() if r["task_type"] == "text_retrieval"}
    assert all(i == source[a]["attributes"]["task"] for a, i in zip(retrieval["anchor"], retrieval["instruction"]))
    assert set(column["monolingual_triplet"]["instruction"]) == {"Retrieve semantically similar text."}
    loaded = TrainingSets.load(tmp_path / "c")
    assert loaded.prompts == {} and loaded.instruction == "column"
    with pytest.raises(UserError, match="instruction='prompts'"):
        loaded.loss_modules(model=None)  # sentence-transformers would embed the column
    assert export(run, "--to", "sentence-transformers", "--instruction", "anchor", "--out", tmp_path / "a",
                  cwd=tmp_path).returncode == 0  # fmt: skip
    anchor = datasets.load_from_disk(str(tmp_path / "a"))
    assert anchor["bitext_retrieval"]["anchor"][0].startswith("Instruct: Retrieve parallel sentences.\nQuery: ")
    assert anchor["monolingual_triplet"]["sentence1"][0].startswith("Instruct: Retrieve semantically similar")
    assert anchor["monolingual_triplet"]["sentence2"][0].startswith("Instruct: Retrieve semantically similar")
    # The same sets from Python, nothing written; the on-disk ones load back as they were made.
    examples, _ = to_examples(RunDir(run).rows(), RunDir(run).task_configs())
    sets = st_datasets(examples, instruction="anchor")
    assert {n: d.to_dict() for n, d in sets.datasets.items()} == {n: d.to_dict() for n, d in anchor.items()}
    assert sets.losses == TrainingSets.load(tmp_path / "a").losses
    for fmt, mode, needle in (("sentence-transformers", "prompt", "invalid choice"), ("e5", "column", "goes with")):
        result = export(run, "--to", fmt, "--instruction", mode, "--out", tmp_path / "x", cwd=tmp_path)
        assert_one_line_error(result, "--instruction", needle)


def test_each_sentence_transformers_dataset_loads_from_the_run_dir(recipe_run, tmp_path):
    """On the Hub each task type's dataset is a config of the run's card (JSONL, as the rows: `datasets` reads every
    config of a repo with one builder, the first config's)."""
    from synthkit.results.card import write_card

    run = Path(shutil.copytree(recipe_run[0], tmp_path / "run"))
    assert export(run, "--to", "sentence-transformers", cwd=tmp_path).returncode == 0
    write_card(run)
    names = set(datasets.get_dataset_config_names(str(run)))
    assert {f"sentence-transformers-{t}" for t in ST_COLUMNS} <= names
    sts = datasets.load_dataset(str(run), "sentence-transformers-monolingual_triplet", split="train",
                                cache_dir=str(tmp_path / "cache"))  # fmt: skip
    assert sts.column_names == ["sentence1", "sentence2", "score"] and len(sts) == 2 * sum(
        r["task_type"] == "monolingual_triplet" for r in recipe_run[1].values()
    )


FLAGEMBEDDING_LAYOUT = {
    "retrieval": {"text_retrieval", "short_text_matching", "long_text_matching", "bitext_retrieval"},
    "sts": {"monolingual_triplet"},
    "classification-no_in_batch_neg": {"text_classification"},
}


def test_flagembedding_export_loads_as_flagembedding_reads_it(recipe_run, tmp_path):
    run, rows = recipe_run
    result = export(run, "--to", "flagembedding", "--out", tmp_path / "fe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PLACEHOLDER" in result.stderr
    # FlagEmbedding's data layout: --train_data takes folders; each .jsonl in one is a dataset of its own.
    assert {
        d.name: {f.stem for f in d.iterdir()} for d in (tmp_path / "fe").iterdir() if d.is_dir()
    } == FLAGEMBEDDING_LAYOUT
    schema = datasets.Features(
        {
            "query": datasets.Value("string"),
            "pos": datasets.Sequence(datasets.Value("string")),
            "neg": datasets.Sequence(datasets.Value("string")),
            "prompt": datasets.Value("string"),
            "type": datasets.Value("string"),
        }
    )
    instructions = {
        "monolingual_triplet": {"Retrieve semantically similar text."},
        "bitext_retrieval": {"Retrieve parallel sentences."},
    }
    total = 0
    for folder, task_types in FLAGEMBEDDING_LAYOUT.items():
        for task_type in task_types:
            # As FlagEmbedding loads a file (load_dataset('json', data_files=...)), with its documented schema.
            data = datasets.load_dataset(
                "json", data_files=str(tmp_path / "fe" / folder / f"{task_type}.jsonl"), split="train", features=schema
            )
            total += len(data)
            source = [r for r in rows.values() if r["task_type"] == task_type]
            assert len(data) == len(source)
            # Its same-dataset sampler asserts one type per batch, a batch being drawn from one file.
            expected_type = {"sts": "symmetric_sts", "classification-no_in_batch_neg": "symmetric_class"}.get(
                folder, "only_1neg"
            )
            assert set(data["type"]) == {expected_type}
            assert all(len(p) == 1 and len(n) == 1 and n[0] and n != p for p, n in zip(data["pos"], data["neg"]))
            # `prompt` is the bare instruction: FlagEmbedding formats it with --query_instruction_format.
            expected = instructions.get(task_type) or {r["attributes"]["task"] for r in source}
            assert set(data["prompt"]) == expected
            query = "Instruct: {}\nQuery: {}".format(data["prompt"][0], data["query"][0])
            assert query.startswith("Instruct: ") and "\nQuery: " in query
    assert total == len(rows)
    # Matching rows have no generated negative: theirs is another row's positive of the same task.
    short = datasets.load_dataset(
        "json", data_files=str(tmp_path / "fe" / "retrieval" / "short_text_matching.jsonl"), split="train"
    )
    positives = {p[0] for p in short["pos"]}
    assert all(n[0] in positives for n in short["neg"])


def test_placeholder_rows_are_refused_without_the_flag(recipe_run, tmp_path):
    run, _ = recipe_run
    for fmt in ("e5", "flagembedding"):
        result = export(run, "--to", fmt, "--out", tmp_path / fmt, cwd=tmp_path, placeholder=False)
        assert_one_line_error(result, "PLACEHOLDER", "llm=mock", "--allow-placeholder")
        assert not (tmp_path / fmt).exists()
    # A refusal does not remove an earlier export, even with --force.
    assert export(run, "--to", "e5", "--out", tmp_path / "e5", cwd=tmp_path).returncode == 0
    refused = export(run, "--to", "e5", "--out", tmp_path / "e5", "--force", cwd=tmp_path, placeholder=False)
    assert refused.returncode != 0 and (tmp_path / "e5" / "e5.jsonl").exists()


def test_exports_of_runs_through_the_server(openai_server, tmp_path):
    server = openai_server()
    for task, extra in (("bitext_retrieval", []), ("text_classification", ["task.task=Classify news by topic"])):
        out = tmp_path / task
        result = run_synthkit(
            f"task={task}", *server_llm(server), "num_rows=3", *extra, f"output_dir={out}", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert export(out, "--to", "e5", cwd=tmp_path, placeholder=False).returncode == 0
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


def test_run_dir_loads_with_datasets_through_the_card(recipe_run, tmp_path):
    """The card's `configs:` front matter: data is the default config, and each export file is one."""
    from synthkit.results.card import write_card

    run = Path(shutil.copytree(recipe_run[0], tmp_path / "run"))
    for fmt in ("e5", "flagembedding"):
        assert export(run, "--to", fmt, cwd=tmp_path).returncode == 0
    write_card(run)
    cache = str(tmp_path / "cache")
    # Rows of different task types hold different keys and attributes: read in several blocks (as a run over
    # 10 MB is), they load only because the card declares the union of their columns.
    data = datasets.load_dataset(str(run), split="train", cache_dir=cache, chunksize=4096)
    written = read_jsonl(run / "data.jsonl")
    assert (run / "data.jsonl").stat().st_size > 4 * 4096  # several blocks
    assert len(data) == len(written) == len(recipe_run[1])
    assert set(data["task_type"]) == {r["task_type"] for r in written}
    assert set(datasets.get_dataset_config_names(str(run))) == {
        "data",
        "brainstorm",
        "e5",
        *(f"flagembedding-{t}" for types in FLAGEMBEDDING_LAYOUT.values() for t in types),
    }
    sts = datasets.load_dataset(str(run), "flagembedding-monolingual_triplet", split="train", cache_dir=cache)
    assert set(sts["type"]) == {"symmetric_sts"}


def test_rejects_load_as_their_own_config(openai_server, tmp_path):
    server = openai_server(plan={"first": ["text:not json"]})
    out = tmp_path / "run"
    result = run_synthkit(
        "task=bitext_retrieval",
        *server_llm(server),
        "num_rows=3",
        "max_attempts=1",
        f"output_dir={out}",
        cwd=tmp_path,
        card=True,
    )
    assert result.returncode == 0, result.stderr
    rejects = datasets.load_dataset(str(out), "rejects", split="train", cache_dir=str(tmp_path / "cache"))
    assert len(rejects) == 1 and "reason" in rejects.column_names
    assert len(datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))) == 3


def test_sts_scores_come_from_the_export_block_and_a_bad_one_is_one_line():
    from synthkit.core.record import Row
    from synthkit.results.export import to_examples
    from synthkit.results.rundir import packaged_tasks

    tasks = packaged_tasks()
    row = Row(0, "monolingual_triplet", outputs={"S1": "a", "S2": "b", "S3": "c"},
              attributes={"high_score": 4.5, "low_score": 2.5})  # fmt: skip
    (example,), _ = to_examples([row], tasks)
    assert (example.positive_score, example.negative_score) == (0.875, 0.375)
    row.attributes["low_score"] = "n/a"
    with pytest.raises(UserError, match="row 0 of monolingual_triplet: .* by 'low_score', .* 'n/a', not a number"):
        to_examples([row], tasks)
    # A task without scores in its export block: its positive 1, its negative 0.
    (plain,), _ = to_examples([Row(0, "bitext_retrieval", outputs={"S1": "a", "S2": "b", "S3": "c"})], tasks)
    assert (plain.positive_score, plain.negative_score) == (1.0, 0.0)

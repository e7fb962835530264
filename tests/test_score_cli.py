"""`synthkit score`, score=true, scoring.policy=drop in exports, --hard-negatives, the card's Quality section and
the sweep's score columns, through the command line in-process. The judge is a tiny model2vec model made here (a
word-level vocabulary over seven topics), loaded by path as users load theirs; the run is written by hand as typed
Rows, since llm=mock rows are placeholder text an embedder cannot judge."""

import json
import subprocess
import sys

import pytest
from helpers import assert_one_line_error, read_jsonl, readme_code, run_synthkit, tiny_static_model

from synthkit.core.record import Row
from synthkit.results.card import write_card
from synthkit.results.sweep import merge_sweep

TOPICS = ["cat kitten feline purr", "rain storm cloud thunder", "bread bake oven flour", "guitar song chord melody",
          "bank loan money credit", "ball goal match team", "plant seed soil flower"]  # fmt: skip
# (query, positive, negative) of text_retrieval rows; the flags each should get.
ROWS = [
    ("cat purr", "kitten feline cat", "cat feline kitten", {"false_negative"}),
    ("rain storm", "storm cloud rain", "ball goal", {"easy_negative"}),
    # Nothing relates query and documents: every cosine is the shared component's.
    ("bread oven flour", "guitar melody", "song chord melody", {"inconsistent", "false_negative", "easy_negative"}),
    ("bake bread", "bake bread oven flour", "oven plant", set()),
    ("bank loan money", "credit bank loan", "bank ball", set()),
    ("money loan bank", "loan credit money", "money song", {"near_duplicate"}),
    ("team match", "ball goal team match", "team song", set()),
    ("seed soil", "plant flower seed soil", "soil money", set()),
    ("thunder cloud", "thunder cloud storm", "cloud bread oven", set()),
]
DROPPED = {"false_negative", "inconsistent", "near_duplicate"}  # scoring.drop's default


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_static_model(tmp_path_factory.mktemp("model") / "tiny-static", TOPICS))


def write_run(directory, rows=ROWS, job=None):
    directory.mkdir(parents=True)
    attributes = {"task": "Retrieve documents about everyday topics.", "language": "English"}
    tags = {"job": job} if job else {}
    with open(directory / "data.jsonl", "w", encoding="utf-8") as f:
        for i, (query, positive, negative, _) in enumerate(rows):
            outputs = {"user_query": query, "positive_document": positive, "hard_negative_document": negative}
            f.write(Row(i, "text_retrieval", cell="English", outputs=outputs, attributes=attributes,
                        model_name="test-model", tags=tags).to_line())  # fmt: skip
    return directory


def score(run, model_dir, *overrides):
    return run_synthkit("score", str(run), f"embedder.model={model_dir}", *overrides, cwd=run.parent, card=True)


def test_score_writes_scores_and_prints_counts_per_task_type(tmp_path, model_dir):
    run = write_run(tmp_path / "run")
    result = score(run, model_dir)
    assert result.returncode == 0, result.stderr
    assert f"scored 9 rows with model2vec {model_dir}: {run / 'scores.jsonl'}" in result.stdout
    assert "text_retrieval: 9 rows; false_negative 2 (22.2%), easy_negative 2 (22.2%), inconsistent 1 (11.1%), " \
           "near_duplicate 1 (11.1%)" in result.stdout  # fmt: skip
    scores = read_jsonl(run / "scores.jsonl")
    assert [set(s["flags"]) for s in scores] == [flags for *_, flags in ROWS]
    summary = json.loads((run / "scores_summary.json").read_text())
    assert summary["embedder"] == {"backend": "model2vec", "model": model_dir} and summary["policy"] == "flag"
    assert summary["task_types"]["text_retrieval"]["flags"]["near_duplicate"]["count"] == 1
    # Thresholds are config: a near_duplicate threshold above any cosine flags none.
    result = score(run, model_dir, "scoring.near_duplicate=1.01", "scoring.top_k=20")
    assert "inconsistent 0 (0.0%), near_duplicate 0 (0.0%)" in result.stdout
    # policy=flag leaves every row in the export.
    exported = run_synthkit("export", str(run), "--to", "e5", cwd=tmp_path, card=True)
    assert exported.returncode == 0 and len(read_jsonl(run / "exports" / "e5" / "e5.jsonl")) == 9


def test_policy_drop_leaves_flagged_rows_out_and_the_card_says_why(tmp_path, model_dir):
    run = write_run(tmp_path / "run")
    result = score(run, model_dir, "scoring.policy=drop")
    assert "scoring.policy=drop: exports leave out 3 rows" in result.stdout, result.stdout
    exported = run_synthkit("export", str(run), "--to", "e5", cwd=tmp_path, card=True)
    assert exported.returncode == 0, exported.stderr
    kept = [e["query"] for e in read_jsonl(run / "exports" / "e5" / "e5.jsonl")]
    assert kept == [q for q, _, _, flags in ROWS if not flags & DROPPED]
    assert "left out by scoring.policy=drop: 3 rows flagged" in exported.stdout
    card = write_card(run).read_text(encoding="utf-8")
    assert "## Quality" in card and "exports leave out 3 rows flagged" in card and "near_duplicate 1" in card
    assert "| text_retrieval | 9 | 2 (22.2%) | 2 (22.2%) | 1 (11.1%) | 1 (11.1%) |" in card
    assert "### Query diversity" in card and "| text_retrieval | English | 9 |" in card
    assert "![similarities](plots/scores.png)" in card and (run / "plots" / "scores.png").stat().st_size > 1000
    # Rows added after scoring are not judged: exporting under drop is refused until scored again.
    with open(run / "data.jsonl", "a", encoding="utf-8") as f:
        f.write(Row(99, "text_retrieval", outputs={"user_query": "x", "positive_document": "y"},
                    attributes={"task": "t"}).to_line())  # fmt: skip
    assert_one_line_error(run_synthkit("export", str(run), "--to", "e5", "--force", cwd=tmp_path, card=True),
                          "judges 9 rows but data.jsonl holds 10", "synthkit score")  # fmt: skip


def test_export_policy_overrides_the_scorings(tmp_path, model_dir):
    run = write_run(tmp_path / "run")
    unscored = run_synthkit("export", str(run), "--to", "e5", "--policy", "drop", cwd=tmp_path, card=True)
    assert_one_line_error(unscored, "--policy drop", "not scored", f"synthkit score {run}")
    assert score(run, model_dir).returncode == 0  # scoring.policy=flag: every row stays in
    kept = [q for q, _, _, flags in ROWS if not flags & DROPPED]
    for policy, queries in (("drop", kept), ("flag", [q for q, *_ in ROWS]), (None, [q for q, *_ in ROWS])):
        args = ["--policy", policy] if policy else []
        result = run_synthkit("export", str(run), "--to", "e5", "--force", *args, cwd=tmp_path, card=True)
        assert result.returncode == 0, result.stderr
        assert [e["query"] for e in read_jsonl(run / "exports" / "e5" / "e5.jsonl")] == queries
        assert ("left out by scoring.policy=drop: 3 rows flagged" in result.stdout) == (policy == "drop")
    assert score(run, model_dir, "scoring.policy=drop").returncode == 0
    result = run_synthkit("export", str(run), "--to", "e5", "--force", "--policy", "flag", cwd=tmp_path, card=True)
    assert len(read_jsonl(run / "exports" / "e5" / "e5.jsonl")) == 9 and "left out" not in result.stdout
    assert_one_line_error(run_synthkit("export", str(run), "--to", "e5", "--policy", "keep", cwd=tmp_path),
                          "--policy", "invalid choice", "'keep'")  # fmt: skip


def flagembedding_group_size(batch: dict, train_group_size: int) -> int:
    """Passages per query in a batch of FlagEmbedding's same-dataset sampler: its rule, as FlagEmbedding 1.4.2 states
    it (abc/finetune/embedder/AbsDataset.py, AbsEmbedderSameDatasetTrainDataset._get_train_group_size, lines 415-439;
    `type` is read from the batch's first row, and lines 457-458 assert every row has it)."""
    assert len(set(batch["type"])) == 1, "FlagEmbedding asserts one type per batch"
    if batch["type"][0] == "only_1neg":
        return 2
    if batch["type"][0] == "symmetric_class":
        return min(len(batch["neg"][0]) + 1, train_group_size)
    return train_group_size


def test_hard_negatives_for_flagembedding_and_sentence_transformers(tmp_path, model_dir):
    run = write_run(tmp_path / "run")
    result = run_synthkit("export", str(run), "--to", "flagembedding", "--hard-negatives", "2",
                          f"embedder.model={model_dir}", cwd=tmp_path, card=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(run / "exports" / "flagembedding" / "retrieval" / "text_retrieval.jsonl")
    assert len(lines) == 9
    for line, (query, positive, negative, flags) in zip(lines, ROWS):
        assert line["query"] == query and line["pos"] == [positive] and len(line["pos_scores"]) == 1
        assert line["neg"][0] == negative and len(line["neg"]) == len(line["neg_scores"]) == len(set(line["neg"]))
        assert positive not in line["neg"]
        assert line["neg_scores"][1:] == sorted(line["neg_scores"][1:], reverse=True)  # mined: hardest first
        assert all(s < 0.95 * line["pos_scores"][0] for s in line["neg_scores"][1:])
        assert len(line["neg"]) == 3 or "inconsistent" in flags  # a positive scoring ~0 leaves nothing to mine
    assert "hard negatives: up to 2 mined per row; 1 rows got fewer" in result.stdout
    # FlagEmbedding uses every negative a row holds (--train_group_size 4: the positive and 3 negatives), not the
    # groups of 2 that only_1neg would give: 1 of the 3 per step.
    batch = {"type": [line["type"] for line in lines], "neg": [line["neg"] for line in lines]}
    assert set(batch["type"]) == {"normal"}
    assert flagembedding_group_size(batch, train_group_size=4) == 4 == 1 + max(len(n) for n in batch["neg"])
    assert flagembedding_group_size({**batch, "type": ["only_1neg"] * 9}, 4) == 2  # what it was
    # Without mined negatives a row holds one, and only_1neg keeps FlagEmbedding from repeating it.
    assert run_synthkit("export", str(run), "--to", "flagembedding", "--out", str(tmp_path / "plain"), cwd=tmp_path,
                        card=True).returncode == 0  # fmt: skip
    plain = read_jsonl(tmp_path / "plain" / "retrieval" / "text_retrieval.jsonl")
    assert {line["type"] for line in plain} == {"only_1neg"} and {len(line["neg"]) for line in plain} == {1}

    result = run_synthkit("export", str(run), "--to", "sentence-transformers", "--hard-negatives", "2",
                          f"embedder.model={model_dir}", cwd=tmp_path, card=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    import datasets

    retrieval = datasets.load_from_disk(str(run / "exports" / "sentence-transformers"))["text_retrieval"]
    assert retrieval.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert retrieval["negative_1"] == [n for _, _, n, flags in ROWS if "inconsistent" not in flags]
    assert "left out 1 rows with fewer negatives than their dataset's others" in result.stdout


def test_flagembeddings_own_sampler_uses_every_mined_negative(tmp_path, model_dir):
    """FlagEmbedding's same-dataset training dataset itself, where it is installed (it needs torch)."""
    pytest.importorskip("torch")
    module = pytest.importorskip("FlagEmbedding.abc.finetune.embedder.AbsDataset")
    from FlagEmbedding.abc.finetune.embedder.AbsArguments import AbsEmbedderDataArguments

    run = write_run(tmp_path / "run")
    result = run_synthkit("export", str(run), "--to", "flagembedding", "--hard-negatives", "2",
                          f"embedder.model={model_dir}", cwd=tmp_path, card=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = run / "exports" / "flagembedding" / "retrieval"
    args = AbsEmbedderDataArguments(train_data=[str(folder)], train_group_size=4, same_dataset_within_batch=True,
                                    query_instruction_format="Instruct: {}\nQuery: {}",
                                    cache_path=str(tmp_path / "cache"))  # fmt: skip
    data = module.AbsEmbedderSameDatasetTrainDataset(args, default_batch_size=2, seed=0, tokenizer=None)
    rows = {line["query"]: line for line in read_jsonl(folder / "text_retrieval.jsonl")}
    assert len(data) == 4  # 9 rows in batches of 2, the last one dropped
    for _ in range(len(data)):
        queries, passages, _, no_in_batch_neg = data[0]
        assert len(passages) == 4 * len(queries) and not no_in_batch_neg
        for i, query in enumerate(queries):
            line = rows[query.split("\nQuery: ")[1]]
            group = passages[4 * i : 4 * i + 4]
            assert query == f"Instruct: {line['prompt']}\nQuery: {line['query']}"
            # Every negative the row holds (each once where it holds 3; repeated only where it holds fewer).
            assert group[0] == line["pos"][0] and set(group[1:]) == set(line["neg"])


def test_hard_negatives_without_documents_to_mine_is_one_line(tmp_path, model_dir):
    run = tmp_path / "run"
    run.mkdir()
    line = Row(0, "short_text_matching", outputs={"input": "cat", "positive_document": "cat purr"},
               attributes={"task": "Match texts."}, model_name="test-model").to_line()  # fmt: skip
    (run / "data.jsonl").write_text(line, encoding="utf-8")
    result = run_synthkit("export", str(run), "--to", "flagembedding", "--hard-negatives", "2",
                          f"embedder.model={model_dir}", cwd=tmp_path, card=True)  # fmt: skip
    assert_one_line_error(result, "--hard-negatives: short_text_matching has no documents to mine")
    assert not (run / "exports").exists()


def test_a_wrong_embedder_model_is_one_line_naming_it_and_the_extra(tmp_path):
    run = write_run(tmp_path / "run")
    missing = tmp_path / "no-such-model"
    assert_one_line_error(run_synthkit("score", str(run), f"embedder.model={missing}", cwd=tmp_path, card=True),
                          f"embedder.model={missing}", "pip install 'synthkit-embed[quality]'")  # fmt: skip
    assert_one_line_error(run_synthkit("score", str(run), "llm=mock", cwd=tmp_path, card=True),
                          "llm=mock is not an embedder or scoring setting")  # fmt: skip
    assert_one_line_error(run_synthkit("score", str(run), "scoring.drop=[too_long]", cwd=tmp_path, card=True),
                          "scoring.drop=[too_long]", "expected one of [false_negative, easy_negative")  # fmt: skip
    assert_one_line_error(run_synthkit("score", str(run), "scoring.top_k=0", cwd=tmp_path, card=True),
                          "scoring.top_k=0 must be at least 1")  # fmt: skip
    assert not (run / "scores.jsonl").exists()


def test_offline_scoring_says_how_to_fetch_the_model_and_the_readmes_fetch_models_makes_it_work(tmp_path, model_dir):
    """A first run offline: the default embedder is in no cache. The error names the command that fetches it; the
    README's commands fetch it from a loopback Hub (tests/hub_server.py, huggingface_hub's own download protocol;
    the tiny model served under the default's name), and scoring then runs offline, from the cache or a copy.
    Subprocesses: huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported."""
    import shlex

    from hub_server import HubServer

    from synthkit.quality.embedder import DEFAULT_MODEL

    run = write_run(tmp_path / "run")
    hub = HubServer("unused", models={DEFAULT_MODEL: model_dir})
    offline = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_XET": "1"}
    online = {**offline, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url}
    block = next(b for b in readme_code("Judging the data", "bash") if "synthkit fetch-models" in b)
    commands = [
        shlex.split(line.split("#")[0].replace("outputs/<run>", str(run)).replace("models/", f"{tmp_path}/models/"))
        for line in block.splitlines()
    ]
    to_cache, st_model, to_copy, score_copy = commands
    assert to_cache == ["synthkit", "fetch-models"] and "embedder=sentence_transformers" in st_model

    def synthkit(args, env):
        return run_synthkit(*args[1:], cwd=tmp_path, env=env, card=True, subprocess_=True)

    try:
        first = synthkit(["synthkit", "score", str(run)], env=offline)
        assert_one_line_error(first, f"embedder.model={DEFAULT_MODEL} could not be loaded by model2vec",
                              f"fetch it first with: synthkit fetch-models embedder.model={DEFAULT_MODEL}")  # fmt: skip
        assert not hub.calls  # offline means offline
        assert_one_line_error(synthkit(to_cache, env=offline), f"synthkit fetch-models embedder.model={DEFAULT_MODEL}")
        fetched = synthkit(to_cache, env=online)
        assert fetched.returncode == 0, fetched.stderr
        assert f"fetched model2vec {DEFAULT_MODEL} into the Hugging Face cache" in fetched.stdout
        assert any(c["path"].endswith("/model.safetensors") and c["method"] == "GET" for c in hub.calls)
        seen = len(hub.calls)
        scored = synthkit(["synthkit", "score", str(run)], env=offline)
        assert scored.returncode == 0, scored.stderr
        assert [set(s["flags"]) for s in read_jsonl(run / "scores.jsonl")] == [flags for *_, flags in ROWS]
        # A copy to take along (made offline, from the cache), and scoring by its path.
        copied = synthkit(to_copy, env=offline)
        assert copied.returncode == 0, copied.stderr
        assert f"embedder.model={tmp_path / 'models' / 'potion'}" in copied.stdout
        again = synthkit(score_copy, env=offline)
        assert again.returncode == 0, again.stderr
        assert len(hub.calls) == seen
        assert_one_line_error(synthkit(to_copy, env=offline), f"--to {tmp_path / 'models' / 'potion'} already holds")
        unknown = synthkit(["synthkit", "fetch-models", "embedder.model=tiny/nothing"], env=online)
        assert_one_line_error(unknown, "embedder.model=tiny/nothing could not be loaded")
    finally:
        hub.stop()


def test_score_true_judges_the_rows_at_the_end_of_a_run(make, model_dir):
    finished = make("llm=mock", "task=text_retrieval", "num_rows=6", "score=true", f"embedder.model={model_dir}")
    assert any(note.startswith(f"scored 6 rows with model2vec {model_dir}") for note in finished.result.notes)
    assert len(read_jsonl(finished.out_dir / "scores.jsonl")) == 6


def test_sweep_coverage_gains_score_columns_for_scored_jobs(tmp_path, model_dir):
    for job, value in (("0", 1), ("1", 2)):
        run = write_run(tmp_path / "sweep" / job, job=None)
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(f"- seed={value}\n", encoding="utf-8")
    score(tmp_path / "sweep" / "0", model_dir)
    text, _ = merge_sweep(tmp_path / "sweep")
    assert (
        "| job | seed | rows | rejects | status | false negatives | easy negatives | inconsistent | near duplicates |"
        in text
    )
    assert "| 0 | 1 | 9 | 0 | did not finish | 22.2% | 22.2% | 11.1% | 11.1% |" in text
    assert "| 1 | 2 | 9 | 0 | did not finish | - | - | - | - |" in text
    # The merged sweep is judged too: rows are told apart by their job.
    result = score(tmp_path / "sweep", model_dir)
    assert result.returncode == 0, result.stderr
    assert {s["job"] for s in read_jsonl(tmp_path / "sweep" / "scores.jsonl")} == {"0"}  # job 1's rows: duplicates


def test_config_and_dry_run_do_not_load_the_embedder(tmp_path):
    for args in (["--cfg", "job", "score=true"], ["llm=mock", "dry_run=true", "score=true"]):
        command = [sys.executable, "-X", "importtime", "-m", "synthkit", *args]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
        assert not imported & {"numpy", "model2vec", "sentence_transformers", "torch"}, args
        if "--cfg" in args:
            assert "embedder:\n  backend: model2vec\n  model: minishlab/potion-multilingual-128M" in result.stdout

"""Sweeps: Hydra multirun with a merged dataset and a coverage table, sweep presets, the
in-process grid, and parallel joblib jobs sharing one cache, one rpm limit and one budget."""

import json

import pytest
import yaml
from helpers import read_jsonl, run_synthkit, server_llm


def test_multirun_merges_rows_and_reports_coverage(openai_server, tmp_path):
    server = openai_server()
    sweep = tmp_path / "sweep"
    result = run_synthkit(
        "-m",
        *server_llm(server),
        "task.unit=sentence,phrase",
        "task.difficulty=college,high school",
        "num_rows=2",
        f"output_dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    merged = read_jsonl(sweep / "data.jsonl")
    assert len(merged) == 8
    for row in merged:  # each row carries its sweep coordinates, and they are what its prompt used
        assert set(row["sweep"]) == {"task.unit", "task.difficulty"}
        assert row["sweep"]["task.unit"] == row["attributes"]["unit"]
        assert row["sweep"]["task.difficulty"] == row["attributes"]["difficulty"]
    cells = {(r["sweep"]["task.unit"], r["sweep"]["task.difficulty"]) for r in merged}
    assert len(cells) == 4
    coverage = (sweep / "coverage.md").read_text()
    assert "| job | task.unit | task.difficulty | rows | rejects | status |" in coverage
    assert "| 1 | sentence | high school | 2 | 0 | ok |" in coverage and coverage.count("| ok |") == 4
    assert (
        "sweep of 4 jobs: 8 rows merged" in result.stdout
        and "| 3 | phrase | high school | 2 | 0 | ok |" in result.stdout
    )


def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_synthkit(
        "-m", "llm=mock", "task.unit=sentence,word,phrase", "num_rows=2", f"output_dir={sweep}", cwd=tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "job 1: task.unit='word' is not allowed" in result.stderr
    assert "1 sweep jobs did not finish cleanly (1)" in result.stderr
    assert len(read_jsonl(sweep / "data.jsonl")) == 4
    assert "| 1 | word | 0 | 0 | task.unit='word' is not allowed" in (sweep / "coverage.md").read_text()


def test_sweep_presets_cover_a_tasks_grid(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_synthkit("-m", "+sweep=brainstorm_grid", "llm=mock", "num_rows=1", f"output_dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(sweep / "data.jsonl")
    assert sorted(r["attributes"]["category"] for r in rows) == [
        "text-classification",
        "text-matching-long",
        "text-matching-short",
        "text-retrieval",
    ]
    for preset, jobs in (
        ("bitext_grid", 81),
        ("text_retrieval_grid", 486),
        ("monolingual_triplet_grid", 81),
        ("text_classification_grid", 9),
        ("short_text_matching_grid", 14),
    ):
        shown = run_synthkit(f"+sweep={preset}", "llm=mock", "--cfg", "hydra", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        count = 1
        for values in yaml.safe_load(shown.stdout)["hydra"]["sweeper"]["params"].values():
            count *= len(str(values).split(","))
        assert count == jobs, preset


def test_in_process_grid_gives_every_cell_its_rows(openai_server, tmp_path):
    # One answer in four breaks the schema: those rows are rejected and refilled within their cell.
    server = openai_server(plan={"faults": {"rate": 0.25, "steps": ["missing_key"], "seed": 2}})
    out = tmp_path / "run"
    result = run_synthkit(
        *server_llm(server),
        "grid=[unit,difficulty]",
        "num_rows=3",
        "max_attempts=1",
        "concurrency=20",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "data.jsonl")
    assert len(rows) == 27 and len(read_jsonl(out / "rejects.jsonl")) > 0
    by_cell = {}
    for r in rows:
        assert r["grid"] == {"unit": r["attributes"]["unit"], "difficulty": r["attributes"]["difficulty"]}
        by_cell[r["cell"]] = by_cell.get(r["cell"], 0) + 1
    assert len(by_cell) == 9 and set(by_cell.values()) == {3}
    coverage = (out / "coverage.md").read_text()
    assert "| unit | difficulty | rows | rejects | status |" in coverage and coverage.count("| 3 |") == 9
    assert "a grid of 9 cells x 3 rows" in result.stdout


def _joblib(*args: str) -> list:
    return ["-m", "+launcher=joblib", "hydra.launcher.n_jobs=2", *args]


def test_parallel_jobs_share_one_rpm_limit_one_cache_and_one_budget(openai_server, tmp_path):
    # One test for the three: joblib's processes take seconds to start, and later sweeps in this process reuse them.
    server = openai_server()

    def sweep(name: str):
        args = [*server_llm(server), "task.unit=sentence,phrase", "llm.rpm=240", "num_rows=5"]
        return run_synthkit(*_joblib(*args, f"output_dir={tmp_path / name}"), cwd=tmp_path)

    result = sweep("sweep")
    assert result.returncode == 0, result.stderr
    times = sorted(r["t"] for r in server.requests())
    assert len(times) == 10
    # Two processes, one limit: 240 per minute together, one request every 0.25 s.
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.25 - 0.03, gaps

    again = sweep("again")
    assert again.returncode == 0, again.stderr
    assert server.stats()["requests"] == 10  # the second sweep's processes are answered from the shared cache
    assert len(read_jsonl(tmp_path / "again" / "data.jsonl")) == 10

    server.reset(None, latency_ms=50)
    budget = tmp_path / "budget"  # a directory of its own: a cache of its own
    budget.mkdir()
    # About $0.1 a row; a request reserves its prompt and llm.max_tokens of answer before it is sent.
    priced = ["llm.input_cost_per_mtok=1000", "llm.output_cost_per_mtok=1000", "llm.max_tokens=64"]
    result = run_synthkit(
        *_joblib(
            *server_llm(server),
            *priced,
            "task.unit=sentence,phrase",
            "max_cost_usd=0.6",
            "num_rows=40",
            "concurrency=1",
            f"output_dir={budget / 'capped'}",
        ),
        cwd=budget,
    )
    # The jobs ran in joblib's processes: their reasons are in the coverage table, the sweep's in one line.
    assert result.returncode == 1 and "max_cost_usd=0.6 reached" in result.stdout
    assert "2 sweep jobs did not finish cleanly" in result.stderr
    rows = read_jsonl(budget / "capped" / "data.jsonl")
    spent = sum(r["usage"]["cost_usd"] for r in rows)
    most = max(r["usage"]["cost_usd"] for r in rows)
    # One cap for both jobs: they stop once one more request could cross it, never more than a request over.
    assert 0.6 - 2 * most <= spent <= 0.6 + most, spent
    ledger = json.loads((budget / "capped" / "synthkit-spent.json").read_text())  # the sweep's one ledger
    assert abs(ledger["spent"] - spent) < 1e-9 and server.stats()["requests"] == len(rows)


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path):
    result = run_synthkit(
        "-m",
        "+launcher=submitit_local",
        "llm=mock",
        "task.unit=sentence,phrase",
        "num_rows=2",
        f"output_dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(tmp_path / "sweep" / "data.jsonl")) == 4


@pytest.mark.slow
def test_ray_launcher_in_local_mode(tmp_path):
    result = run_synthkit(
        "-m",
        "+launcher=ray",
        "llm=mock",
        "task.unit=sentence,phrase",
        "num_rows=2",
        f"output_dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(tmp_path / "sweep" / "data.jsonl")) == 4


def test_sweep_jobs_draw_apart_and_reproducibly(tmp_path):
    def draws(name: str) -> list:
        result = run_synthkit(
            "-m",
            "llm=mock",
            "task.unit=phrase,sentence",
            "num_rows=4",
            f"output_dir={tmp_path / name}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        return [
            [r["attributes"]["target_language"] for r in read_jsonl(tmp_path / name / str(job) / "data.jsonl")]
            for job in range(2)
        ]

    first = draws("a")
    assert len({tuple(job) for job in first}) == 2  # each job its own draws
    assert draws("b") == first  # and the same again
    single = run_synthkit("llm=mock", "task.unit=phrase", "num_rows=4", f"output_dir={tmp_path / 'c'}", cwd=tmp_path)
    assert single.returncode == 0
    assert [r["attributes"]["target_language"] for r in read_jsonl(tmp_path / "c" / "data.jsonl")] != first[0]

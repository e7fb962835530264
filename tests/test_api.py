"""The Python API as notebook users call it: keywords beside the command line's overrides, a Run that reads its dir
(rows, rejects, scores, exports, card), a preview that returns rows and a projected cost, a finished run opened from
its dir, progress in a notebook, the public names. In-process against the loopback server; the README's example
is run as written, the server in the place of the provider."""

import os
import re
import sys
import types

import pytest
from helpers import read_jsonl, readme_code, server_llm

import synthkit
from synthkit.interface.api import keyword_overrides


def test_keywords_are_the_command_lines_overrides():
    assert keyword_overrides(
        {
            "task": "text_retrieval",
            "num_rows": 100,
            "max_cost_usd": 2.5,
            "llm__model": "gpt-4o",
            "task.language": None,
            "dedup": False,
            "task.difficulty": ["high school", "college"],
            "task.task": "Given a city, retrieve its mayor",  # a comma: a sweep unless quoted
            "task.unit": "it's",
            "seed": "7",  # a string stays one
            "task.domains.language": "${languages.e5_mix}",  # an interpolation stays one
            "llm": {"model": "x", "temperature": 0.5},
        }
    ) == [
        "task=text_retrieval",
        "num_rows=100",
        "max_cost_usd=2.5",
        "llm.model=gpt-4o",
        "task.language=null",
        "dedup=false",
        "task.difficulty=[high school,college]",
        "task.task='Given a city, retrieve its mayor'",
        "task.unit='it\\'s'",
        "seed='7'",
        "task.domains.language=${languages.e5_mix}",
        "llm.model=x",
        "llm.temperature=0.5",
    ]
    cfg = synthkit.compose("num_rows=5", num_rows=7, task="text_classification", **{"task.task": "Sort mail, fast"})
    assert cfg.num_rows == 7 and cfg.task.name == "text_classification" and cfg.task.task == "Sort mail, fast"
    with pytest.raises(synthkit.UserError, match="did you mean num_rows"):
        synthkit.compose(num_row=5)
    with pytest.raises(synthkit.UserError, match="a keyword takes a string"):
        synthkit.compose(seed=object())


def test_a_run_reads_its_rows_rejects_card_and_exports(openai_server, tmp_path):
    server = openai_server(plan={"first": ["text:not json"]})
    run = synthkit.generate(
        *server_llm(server),
        task="bitext_retrieval",
        num_rows=3,
        max_attempts=1,
        output_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        progress_every_s=0,
    )
    assert run.path == tmp_path / "run" and os.fspath(run) == str(tmp_path / "run")
    assert repr(run) == f"<synthkit run {tmp_path / 'run'}: 3 rows, 1 rejected>"
    rows = run.dataset()
    assert rows.num_rows == 3 and rows["S1"] == [r["S1"] for r in read_jsonl(run.data_path)]
    rejects = run.rejects()
    assert rejects.num_rows == 1 and "reason" in rejects.column_names
    assert run.to_pandas().shape[0] == 3
    assert run.card_path == tmp_path / "run" / "README.md" and "# synthkit data" in run.card_path.read_text()
    exported = run.export(to="e5")
    assert len(read_jsonl(exported.written[0])) == 3
    assert run.dataset("e5").num_rows == 3  # an export as the card names it
    with pytest.raises(synthkit.UserError, match="is not scored: run synthkit score"):
        run.scores()
    with pytest.raises(synthkit.UserError, match="has no 'nope' to load: it has data, rejects, brainstorm, e5"):
        run.dataset("nope")
    opened = synthkit.open_run(tmp_path / "run")
    assert repr(opened) == repr(run) and opened.dataset().num_rows == 3
    with pytest.raises(synthkit.UserError, match="holds no data.jsonl"):
        synthkit.open_run(tmp_path / "nowhere")


def test_rows_of_every_task_type_load_together_and_no_rejects_is_an_empty_split(tmp_path):
    run = synthkit.generate(
        "recipe=e5", llm="mock", num_rows=60, output_dir=tmp_path / "run", cache_dir=tmp_path / "c", card=False
    )
    assert run.card_path is None
    rows = run.dataset()  # keys differ by task type: read with their union
    assert rows.num_rows == 60 and len(set(rows["task_type"])) == 6
    assert {"S1", "user_query", "input_text", "input"} <= set(rows.column_names)
    assert run.rejects().num_rows == 0
    assert run.dataset("brainstorm").num_rows == sum(1 for _ in open(tmp_path / "run" / "brainstorm" / "data.jsonl"))
    # repr counts the generation stage's rows, the brainstorm's apart
    assert repr(synthkit.open_run(run.path)) == f"<synthkit run {run.path}: 60 rows, 0 rejected>"


def test_preview_returns_its_rows_and_the_projected_cost(openai_server, tmp_path):
    server = openai_server()
    check = synthkit.preview(
        *server_llm(server),
        task="short_text_matching",
        num_rows=20_000,
        rows=3,
        output_dir=tmp_path / "p",
        cache_dir=tmp_path / "cache",
        card=False,
        **{"task.task": "Match a question to its answer", "llm.input_cost_per_mtok": 1, "llm.output_cost_per_mtok": 1},
    )
    frame = check.to_pandas()
    assert len(frame) == 3 == server.stats()["requests"] and "positive_document" in frame.columns
    paid = sum(r["usage"]["cost_usd"] for r in read_jsonl(check.data_path))
    assert check.preview.projected_cost_usd == pytest.approx(paid / 3 * 20_000)
    assert "for num_rows=20,000" in check.preview.text and repr(check).startswith("<synthkit preview")
    with pytest.raises(synthkit.UserError, match="rows=0 must be"):
        synthkit.preview(llm="mock", rows=0)


def test_progress_is_a_bar_in_a_notebook(tmp_path, monkeypatch, capsys):
    """In a Jupyter kernel stderr is no terminal, yet the run shows tqdm.auto's bar (a widget with ipywidgets)
    rather than a line every progress_every_s seconds."""
    import tqdm.auto

    from synthkit.engine import progress

    assert not progress.in_notebook()
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert progress.in_notebook()
    made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda **kwargs: made.append(kwargs) or tqdm.auto.std_tqdm(**kwargs))
    run = synthkit.generate(llm="mock", num_rows=4, output_dir=tmp_path / "run", cache_dir=tmp_path / "c", card=False)
    assert repr(run).endswith("4 rows, 0 rejected>")
    assert len(made) == 1 and made[0]["total"] == 4 and made[0]["unit"] == "row"
    err = capsys.readouterr().err
    assert "4/4" in err and "synthkit: generate:" not in err


def test_the_public_names():
    import synthkit.errors

    assert (
        synthkit.errors.UserError is synthkit.UserError and synthkit.errors.RunStoppedEarly is synthkit.RunStoppedEarly
    )
    for name in synthkit.__all__:
        assert getattr(synthkit, name) is not None, name
    assert {"generate", "preview", "compose", "open_run", "Run", "UserError", "RunStoppedEarly"} <= set(
        synthkit.__all__
    )


def test_the_readmes_python_example_runs_as_written(openai_server, tmp_path, monkeypatch):
    server = openai_server()
    (code,) = [c for c in readme_code("From Python") if "synthkit.generate(" in c]
    provider = 'llm="openai"'
    assert code.count(provider) == 2
    loopback = ", ".join(f"**{{{o.split('=', 1)[0]!r}: {o.split('=', 1)[1]!r}}}" for o in server_llm(server))
    code = code.replace(provider, f"{loopback}, cache_dir={str(tmp_path / 'cache')!r}, progress_every_s=0")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    run = scope["run"]
    assert re.fullmatch(r"<synthkit run outputs/\S+: 100 rows, 0 rejected>", repr(run))
    assert scope["rows"].num_rows == 100 and scope["rejects"].num_rows == 0
    assert scope["card"] == run.path / "README.md" and scope["card"].is_file()
    assert {p.name for p in scope["exported"].written} >= {"text_retrieval.jsonl"}
    check = scope["check"]
    assert check.preview.rows == 5 and check.preview.full_rows == 100_000
    assert scope["cfg"].num_rows == 1000

"""Unit tests of the engine's pure parts: allocation of rows over a recipe or a grid, the run ledger,
the scheduler's choice of rows (without workers), and the config's bounds and one-line errors."""

import copy
from collections import Counter

import pytest
from omegaconf import OmegaConf

import synthkit
from synthkit.core.config import check_bounds
from synthkit.core.ledger import Ledger
from synthkit.engine.plan import allocate, grid_units, units_of
from synthkit.engine.rows import Cell, Outcome
from synthkit.engine.scheduler import RejectLimits, Scheduler
from synthkit.errors import UserError
from synthkit.spec.task import TaskSpec

E5_TASKS = (
    "text_retrieval",
    "text_classification",
    "monolingual_triplet",
    "bitext_retrieval",
    "long_text_matching",
    "short_text_matching",
)


@pytest.fixture(scope="module")
def e5_cfg():
    return synthkit.compose("llm=mock", "recipe=e5", "num_rows=2000")


@pytest.fixture(scope="module")
def bitext() -> dict:
    return OmegaConf.to_container(synthkit.compose("llm=mock").task, resolve=True)


# allocate.


@pytest.mark.parametrize(
    "total,weights",
    [
        (10, {"a": 1, "b": 1, "c": 1}),
        (2000, {"a": 167, "b": 122, "c": 99, "d": 89, "e": 17, "f": 13}),
        (7, {"a": 0.1, "b": 0.2, "c": 0.3}),
        (1, {"a": 1, "b": 1}),
        (0, {"a": 1, "b": 2}),
        (5, {"a": 0, "b": 3}),
    ],
)
def test_allocate_sums_to_total_and_stays_within_one_of_the_exact_share(total, weights):
    counts = allocate(total, weights)
    assert sum(counts.values()) == total
    whole = sum(weights.values())
    for k, w in weights.items():
        assert abs(counts[k] - total * w / whole) < 1


def test_allocate_gives_the_leftovers_to_the_largest_remainders():
    # Exact shares 5/7, 10/7, 20/7: floors 0, 1, 2 leave two rows, for c (.857) and a (.714), not b (.429).
    assert allocate(5, {"a": 1, "b": 2, "c": 4}) == {"a": 1, "b": 1, "c": 3}


def test_allocate_breaks_ties_by_order():
    # Equal remainders: the earlier key gets the spare row, every time.
    assert allocate(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert allocate(10, {"c": 1, "b": 1, "a": 1}) == {"c": 4, "b": 3, "a": 3}
    assert allocate(10, {"a": 11, "b": 5, "c": 4}) == {"a": 6, "b": 2, "c": 2}  # 5.5, 2.5, 2.0


def test_allocate_zero_weight_gets_nothing():
    assert allocate(9, {"a": 0, "b": 1, "c": 2}) == {"a": 0, "b": 3, "c": 6}


def test_all_zero_recipe_shares_is_a_user_error(e5_cfg):
    cfg = copy.deepcopy(e5_cfg)
    for name in E5_TASKS:
        cfg.recipe.shares[name] = 0
    with pytest.raises(UserError):
        units_of(cfg)


# units_of for the e5 recipe.


def test_e5_units_follow_the_recipe_shares(e5_cfg):
    units = units_of(e5_cfg)
    assert sum(u.rows for u in units) == 2000
    assert all(u.rows > 0 for u in units)
    shares = dict(e5_cfg.recipe.shares)
    per_task = Counter()
    for u in units:
        per_task[u.key.split("/")[0]] += u.rows
    assert set(per_task) == set(E5_TASKS)
    for name, rows in per_task.items():
        assert abs(rows - 2000 * shares[name] / sum(shares.values())) < 1, name


def test_e5_units_follow_the_language_mix(e5_cfg):
    units = units_of(e5_cfg)
    mix = OmegaConf.to_container(e5_cfg.languages.e5_mix, resolve=True)
    weights = {v: mix["weights"].get(v, mix["other_weight"]) for v in mix["values"]}
    english = weights["English"] / sum(weights.values())
    assert 0.42 < english < 0.44  # the paper's 43.1%
    per_task = Counter()
    for u in units:
        per_task[u.key.split("/")[0]] += u.rows
    english_rows = 0
    for u in units:
        name, language = u.key.split("/", 1)
        if language == "English":
            english_rows += u.rows
            assert abs(u.rows - per_task[name] * english) < 1, name
    assert abs(english_rows - 2000 * english) < len(E5_TASKS)


def test_e5_units_fix_the_language_attribute(e5_cfg):
    units = {u.key: u for u in units_of(e5_cfg)}
    bitext = units["bitext_retrieval/Polish"]
    assert bitext.task["source_language"] == "Polish"
    assert bitext.task["domains"]["source_language"] == list(e5_cfg.languages.e5_mix["values"])
    assert units["text_retrieval/German"].task["language"] == "German"
    assert all(u.tags == {"recipe": "e5"} for u in units.values())


# grid_units.


def test_grid_units_cover_every_combination(bitext):
    units = grid_units(bitext, ["unit", "difficulty"], 5, "seed")
    combos = [(u.task["unit"], u.task["difficulty"]) for u in units]
    assert len(combos) == 9 == len(set(combos))
    assert set(combos) == {
        (a, b) for a in ("sentence", "phrase", "passage") for b in ("elementary school", "high school", "college")
    }
    assert all(u.rows == 5 for u in units)
    first = units[0]
    assert first.key == f"unit={first.task['unit']},difficulty={first.task['difficulty']}"
    assert first.tags == {"grid": {"unit": first.task["unit"], "difficulty": first.task["difficulty"]}}


def test_grid_follows_a_narrowed_or_fixed_attribute(bitext):
    units = grid_units(
        {**bitext, "unit": ["phrase", "passage"], "difficulty": "college"}, ["unit", "difficulty"], 1, "seed"
    )
    assert [u.key for u in units] == ["unit=phrase,difficulty=college", "unit=passage,difficulty=college"]


def test_grid_unknown_attribute_names_the_attributes(bitext):
    with pytest.raises(UserError, match="grid names colour.*its attributes: .*unit.*difficulty"):
        grid_units(bitext, ["colour"], 5, "seed")


def test_grid_over_a_free_text_list_gives_one_unit_per_item():
    task = OmegaConf.to_container(synthkit.compose("llm=mock", "task=text_classification").task, resolve=True)
    units = grid_units({**task, "task": ["classify A", "classify B"]}, ["task"], 2, "seed")
    assert [u.task["task"] for u in units] == ["classify A", "classify B"]


def test_grid_on_a_brainstorm_task_makes_units():
    cfg = synthkit.compose("llm=mock", "task=text_classification", "grid=[difficulty]")
    assert len(units_of(cfg)) == 3


def test_grid_and_recipe_do_not_combine(e5_cfg):
    cfg = copy.deepcopy(e5_cfg)
    cfg.grid = ["unit"]
    with pytest.raises(UserError, match="grid and recipe do not combine"):
        units_of(cfg)


# Ledger.


def test_ledger_totals_are_the_sums_of_its_stages():
    ledger = Ledger()
    ledger.stage_started("brainstorm", 3, resumed=1)
    for _ in range(4):
        ledger.request_sent()
    ledger.answered(10, 20, 0.5, cached=False)
    ledger.answered(1, 2, None, cached=True, truncated=True)
    ledger.row_written({"unit": "phrase"})
    ledger.row_rejected("distinct", {"unit": "phrase"})
    ledger.stage_ended()
    ledger.stage_started("generate", 10, resumed=2)
    ledger.request_sent()
    ledger.answered(100, 200, 0.25, cached=False)
    ledger.row_written({"unit": "phrase"})
    ledger.row_written({"unit": "phrase"})
    ledger.row_rejected("distinct", {"unit": "phrase"})
    ledger.row_rejected("parse", {"unit": "passage"})
    ledger.row_failed()
    ledger.duplicate()
    ledger.stage_ended()
    t = ledger.totals()
    assert (t.written, t.rejected, t.failed, t.resumed, t.duplicates) == (3, 3, 1, 3, 1)
    assert (t.requests, t.cached, t.truncated) == (5, 1, 1)
    assert (t.prompt_tokens, t.completion_tokens) == (111, 222)
    assert t.cost_usd == pytest.approx(0.75)
    assert t.reasons == Counter({"distinct": 2, "parse": 1})
    # The stages keep their own counts.
    assert ledger.stages[0].tally.written == 1 and ledger.stages[1].tally.written == 2
    assert ledger.stopped_early is None


def test_ledger_stopped_early_is_the_first_stop_and_sticks():
    ledger = Ledger()
    ledger.stage_started("brainstorm", 1, resumed=0)
    ledger.stage_ended()
    ledger.stage_started("generate", 1, resumed=0)
    ledger.stop("max_cost_usd=1 reached")
    ledger.stop("something later")
    ledger.stage_ended(stopped_early="another reason")
    assert ledger.stopped_early == "max_cost_usd=1 reached"
    assert ledger.stages[0].stopped_early is None


# Scheduler, without workers.


def _cells(*specs) -> list:
    task = TaskSpec({"name": "toy", "domains": {"x": ["a"]}, "x": None, "output": {"t": "string"}, "prompt": "p"})
    return [Cell(task, rows, key=key) for key, rows in specs]


def _scheduler(cells, done=None, written=None, limits=None):
    return Scheduler(
        cells, done or {}, Counter(written or {}), limits or RejectLimits(0.9, 50, 20)
    )  # the defaults of conf/config.yaml


def test_round_robin_over_cells():
    scheduler = _scheduler(_cells(("a", 2), ("b", 2), ("c", 2)))
    jobs = []
    while (job := scheduler.next_job()) is not None:
        jobs.append((job[0].cell.key, job[1][0]))
    assert jobs == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1)]


def test_round_robin_skips_full_cells():
    scheduler = _scheduler(_cells(("a", 1), ("b", 3)))
    keys = []
    while (job := scheduler.next_job()) is not None:
        keys.append(job[0].cell.key)
    assert keys == ["a", "b", "b", "b"]


def test_a_rejected_row_is_replaced_by_the_next_unused_index():
    scheduler = _scheduler(_cells(("a", 2)))
    (s, (r0, _)), (_, (r1, _)) = scheduler.next_job(), scheduler.next_job()
    assert (r0, r1) == (0, 1)
    assert scheduler.next_job() is None  # both rows in flight
    scheduler.finish(s, Outcome.rejected, "distinct", source=0)
    # A new index, with the rejected row's attributes: refills keep the drawn distribution.
    assert scheduler.next_job()[1] == (2, 0)
    scheduler.finish(s, Outcome.written, None)
    scheduler.finish(s, Outcome.written, None)
    assert scheduler.next_job() is None
    assert scheduler.shortfall(0, "rejects.jsonl") is None


def test_a_failed_row_is_replaced_too():
    scheduler = _scheduler(_cells(("a", 1)))
    s, _ = scheduler.next_job()
    scheduler.finish(s, Outcome.failed, None)
    assert scheduler.next_job()[1] == (1, 1)


def test_indices_already_done_are_skipped():
    scheduler = _scheduler(_cells(("a", 4)), done={"a": {0, 1, 3}}, written={"a": 2})
    rows = []
    while (job := scheduler.next_job()) is not None:
        rows.append(job[1][0])
    assert rows == [2, 4]  # two more rows to write, at the first indices not yet used


def test_a_starved_cell_stops_while_others_continue():
    scheduler = _scheduler(_cells(("bad", 100), ("good", 60)))
    handed = Counter()
    while (job := scheduler.next_job()) is not None:
        schedule, _ = job
        handed[schedule.cell.key] += 1
        if schedule.cell.key == "bad":
            scheduler.finish(schedule, Outcome.rejected, "language" if handed["bad"] % 4 == 0 else "distinct")
        else:
            scheduler.finish(schedule, Outcome.written, None)
    assert handed["bad"] == 20  # starved once the 20 rows the rate needs were seen, all rejected
    assert handed["good"] == 60
    bad, good = scheduler.schedules
    assert bad.starved and not bad.full and good.full
    message = scheduler.shortfall(0, "rejects.jsonl")
    assert message.startswith("1 cells starved by rejects: bad (0/100 rows; distinct 15)")
    assert "good" not in message and message.endswith("see rejects.jsonl")


def test_a_cell_below_the_rate_is_not_starved():
    scheduler = _scheduler(_cells(("a", 30)))
    n = 0
    while (job := scheduler.next_job()) is not None:
        n += 1
        rejected = n % 2 == 1  # 50% rejects
        scheduler.finish(job[0], Outcome.rejected if rejected else Outcome.written, "distinct" if rejected else None)
    assert scheduler.schedules[0].full and n == 60
    assert scheduler.shortfall(0, "r") is None


def test_a_cell_stops_after_two_rejects_per_row_asked():
    # 80% rejects stays under the rate, but 60 rejects for a 30-row cell is the cell's limit: 74 rows handed
    # out, 14 of them written (the 60th reject is row 74).
    scheduler = _scheduler(_cells(("a", 30)))
    n = 0
    while (job := scheduler.next_job()) is not None:
        n += 1
        rejected = n % 5 != 0
        scheduler.finish(job[0], Outcome.rejected if rejected else Outcome.written, "distinct" if rejected else None)
    schedule = scheduler.schedules[0]
    assert (n, schedule.written, schedule.rejects) == (74, 14, 60)
    assert not schedule.window.starved and schedule.starved
    assert scheduler.shortfall(0, "r").startswith("1 cells starved by rejects: a (14/30 rows; distinct 60)")


def test_the_run_window_stops_every_cell():
    scheduler = _scheduler(_cells(("a", 50), ("b", 50), ("c", 50)))
    handed = 0
    while (job := scheduler.next_job()) is not None:
        handed += 1
        scheduler.finish(job[0], Outcome.rejected, "parse")
    # No single cell saw 20 rows, but the run did.
    assert handed == 20
    assert not any(s.starved for s in scheduler.schedules)
    message = scheduler.shortfall(0, "rejects.jsonl")
    assert message.startswith("stopped: 20 of the last 20 rows were rejected (top reasons: parse 20)")


def test_shortfall_after_failures():
    scheduler = _scheduler(_cells(("a", 1)))
    assert (
        scheduler.shortfall(3, "r")
        == "3 rows failed after every retry; run again with the same output_dir to make them"
    )
    scheduler.stopped = "max_cost_usd=1 reached"
    assert scheduler.next_job() is None
    assert scheduler.shortfall(3, "r") == "max_cost_usd=1 reached"


# Config.


@pytest.mark.parametrize(
    "settings,key",
    [
        ({"num_rows": 0}, "num_rows=0"),
        ({"llm": {"max_tokens": -1}}, "llm.max_tokens=-1"),
        ({"max_cost_usd": -1}, "max_cost_usd=-1"),
        ({"max_cost_usd": 0}, "max_cost_usd=0"),
        ({"dedup_threshold": -1}, "dedup_threshold=-1"),
        ({"dedup_threshold": 1.5}, "dedup_threshold=1.5"),
        ({"llm": {"top_p": 0}}, "llm.top_p=0"),
    ],
)
def test_check_bounds_names_the_key(settings, key):
    with pytest.raises(UserError, match=f"^{key} must be"):
        check_bounds(OmegaConf.create(settings))


def test_check_bounds_accepts_the_defaults_and_edges(e5_cfg):
    check_bounds(e5_cfg)
    check_bounds(OmegaConf.create({"num_rows": 1, "dedup_threshold": 1, "max_cost_usd": 0.01, "llm": {"rpm": None}}))


def test_a_yaml_syntax_error_is_one_line(tmp_path):
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "broken.yaml").write_text("name: broken\ndomains: {a: [1, 2\nprompt: x\n", encoding="utf-8")
    with pytest.raises(UserError) as error:
        synthkit.compose("llm=mock", "task=broken", config_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message
    assert "not valid YAML" in message and "line" in message


def test_an_unknown_option_lists_the_available_ones():
    with pytest.raises(UserError, match="no task named 'nosuch'; available: .*bitext_retrieval"):
        synthkit.compose("llm=mock", "task=nosuch")


def test_keys_are_refused_as_overrides():
    with pytest.raises(UserError, match="keys are not taken as overrides"):
        synthkit.compose("llm=mock", "llm.api_key=sk-abc")

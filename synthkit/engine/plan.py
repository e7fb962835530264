"""What a run makes, as engine cells: one task, or a recipe's mixture allocated over task types
and languages. Tasks that need task definitions get them from the config, a file, an earlier
brainstorm's output, or a brainstorm stage that runs first."""

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from synthkit.core.config import check_bounds
from synthkit.core.errors import UserError
from synthkit.core.paths import corpus_root, special_file
from synthkit.core.record import read_rows
from synthkit.core.secrets import key_like_name
from synthkit.corpus.domain import check_corpus_used
from synthkit.engine.rows import DEFINITION, Cell
from synthkit.quality.dedup import Deduplicator
from synthkit.results.rundir import RunDir
from synthkit.spec.languages import is_language_attribute, resolve
from synthkit.spec.task import TaskSpec
from synthkit.spec.values import file_path

ROWS_PER_BRAINSTORM = 60  # ~20 definitions per answer, ~3 examples each: the paper's 500k from 150k


@dataclass
class RunPlan:
    """What a run makes, checked before anything is written: its units and their tasks."""

    units: list
    specs: list  # a TaskSpec per unit (a stand-in definition where they are brainstormed)
    label: str  # what is made, for summaries: a task name or a recipe

    @property
    def brainstorms(self) -> bool:
        return any(map(needs_brainstorm, self.units))


def plan_run(cfg: DictConfig) -> RunPlan:
    """The run's units and task specs; config and template mistakes are one line here, before any request or
    file."""
    check_bounds(cfg)
    _refuse_env_keys(cfg)
    units = units_of(cfg)
    specs = [probe_spec(unit, cfg.preset, corpus_root(cfg.cache_dir)) for unit in units]
    check_corpus_used(cfg.get("corpus"), specs)
    for spec in specs:
        spec.probe(spec.draw_attributes(cfg.seed, 0))
    label = f"recipe {cfg.recipe.name}" if cfg.recipe is not None else cfg.task.name
    if cfg.grid:
        label += f", a grid of {len(units)} cells x {cfg.num_rows} rows"
    return RunPlan(units, specs, label)


_ENV_INTERPOLATION = re.compile(r"\$\{oc\.env:\s*([^,}\s]+)")


def _refuse_env_keys(cfg: DictConfig) -> None:
    """A key read into a task config by ${oc.env:...} would be written into rows, prompts and config files."""
    for section in ("task", "brainstorm", "recipe"):
        node = cfg.get(section)
        text = OmegaConf.to_yaml(node, resolve=False) if node is not None else ""
        for name in _ENV_INTERPOLATION.findall(text):
            if key_like_name(name):
                raise UserError(
                    f"{section} reads ${{oc.env:{name}}}, a key: keys go only in llm.api_key_env, "
                    "never into task configs (they would be written with the rows)"
                )


@dataclass
class Unit:
    """A share of the run: a task config (resolved), its row count, and its key among the cells."""

    key: str
    task: dict
    rows: int
    tags: dict = field(default_factory=dict)  # written into each of the unit's rows


@dataclass(frozen=True)
class Definition:
    text: str
    origin: dict  # written into the rows made from it: {"brainstorm_row": i, ...}
    source: object  # the brainstorm Row it came from


def allocate(total: int, weights: dict) -> dict:
    """Split `total` by `weights` into integers (largest remainder): the rounded shares, summing to total."""
    whole = sum(weights.values())
    if whole <= 0 or min(weights.values(), default=0) < 0:
        raise UserError(f"shares {dict(weights)} must be non-negative with a positive sum")
    exact = {k: total * w / whole for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def units_of(cfg: DictConfig) -> list:
    if cfg.grid:
        if cfg.recipe is not None:
            raise UserError("grid and recipe do not combine: sweep a recipe's task types with -m instead")
        task = OmegaConf.to_container(cfg.task, resolve=True)
        return grid_units(task, list(cfg.grid), cfg.num_rows, cfg.preset, corpus_root(cfg.cache_dir))
    if cfg.recipe is None:
        return [Unit("", OmegaConf.to_container(cfg.task, resolve=True), cfg.num_rows)]
    recipe = OmegaConf.to_container(cfg.recipe, resolve=True)
    languages = recipe["languages"]
    if isinstance(languages, list):
        languages = {"values": languages}
    values = languages["values"]
    weights = languages.get("weights") or [1] * len(values)
    if isinstance(weights, dict):
        weights = [weights.get(v, languages.get("other_weight", 0)) for v in values]
    merged: dict = {}  # one name per language: cells say "German" however the list spells it (de, german)
    for value, weight in zip(values, weights):
        name = (resolve(value) if isinstance(value, str) else None) or value
        merged[name] = merged.get(name, 0) + weight
    values, weights = list(merged), list(merged.values())
    units = []
    for name, rows in allocate(cfg.num_rows, recipe["shares"]).items():
        if name not in recipe["tasks"]:
            raise UserError(f"recipe.shares names {name}, which is not under recipe.tasks")
        key = (recipe.get("language_attribute") or {}).get(name, "language")
        for language, n in allocate(rows, dict(zip(values, weights))).items():
            if n:
                task = json.loads(json.dumps(recipe["tasks"][name]))
                task[key] = language
                task["domains"][key] = values  # the recipe's languages are this attribute's domain
                _draw_other_languages_as_the_recipe(task, key, {"values": values, "weights": weights})
                units.append(Unit(f"{name}/{language}", task, n, {"recipe": recipe["name"]}))
    return units


def _draw_other_languages_as_the_recipe(task: dict, allocated: str, languages: dict) -> None:
    """A language the recipe does not allocate (bitext's target) is drawn from its languages with its weights,
    unless the user set it; preset=paper's own language domains then give way to the recipe's."""
    paper = (task.get("paper") or {}).get("domains") or {}
    for name, domain in task["domains"].items():
        if name != allocated and is_language_attribute(name) and task.get(name) is None:
            differs = domain.get("differs_from") if isinstance(domain, dict) else None
            task["domains"][name] = {**languages, **({"differs_from": differs} if differs else {})}
            paper.pop(name, None)
    paper.pop(allocated, None)


def grid_units(task: dict, names: list, rows: int, preset: str, corpus_root: Optional[Path] = None) -> list:
    """One unit per combination of the named attributes' values (their domains, or the subsets the
    task narrows them to), each with `rows` rows."""
    attributes = {a.name: a for a in probe_spec(Unit("", task, rows), preset, corpus_root).attributes}
    axes = []
    for name in names:
        a = attributes.get(name)
        if a is None:
            raise UserError(
                f"grid names {name}, which is not an attribute of {task['name']}; "
                f"its attributes: {', '.join(attributes)}"
            )
        values = (a.fixed,) if a.fixed is not None else a.choices
        axes.append([(name, v) for v in values])
    units = []
    for combination in itertools.product(*axes):
        fixed = dict(combination)
        key = ",".join(f"{k}={v}" for k, v in fixed.items())
        units.append(Unit(key, {**task, **fixed}, rows, {"grid": fixed}))
    return units


def needs_brainstorm(unit: Unit) -> bool:
    return bool(unit.task.get("brainstorm")) and unit.task.get(DEFINITION) is None


def probe_spec(unit: Unit, preset: str, corpus_root: Optional[Path] = None) -> TaskSpec:
    """The unit's task, with a stand-in definition where the definitions are not known yet."""
    task = unit.task
    if needs_brainstorm(unit) or _brainstorm_file(unit) is not None:
        task = {**task, DEFINITION: "<a brainstormed task definition>"}
    return TaskSpec(task, preset, corpus_root)


def brainstorm_cells(cfg: DictConfig, units: list) -> list:
    """One brainstorm cell per category that some unit needs definitions for."""
    rows_by_category: dict = {}
    for unit in filter(needs_brainstorm, units):
        category = unit.task["brainstorm"]
        rows_by_category[category] = rows_by_category.get(category, 0) + unit.rows
    cells = []
    for category, rows in rows_by_category.items():
        task = OmegaConf.to_container(cfg.brainstorm, resolve=True)
        task["category"] = category
        answers = cfg.brainstorm_rows or math.ceil(rows / ROWS_PER_BRAINSTORM)
        cells.append(
            Cell(TaskSpec(task, cfg.preset), answers, key=f"brainstorm/{category}", tags={"category": category})
        )
    return cells


def generate_cells(cfg: DictConfig, units: list, brainstormed: Optional[Path]) -> list:
    """The cells that make the run's rows. Units that share a definition pool take consecutive
    stretches of it, so every definition gets its share however many cells there are."""
    cells, used, pools = [], {}, {}
    for unit in units:
        task, origins = dict(unit.task), {}
        definitions = _definitions(unit, brainstormed, pools)
        if definitions is not None:
            pool = task.get("brainstorm") or task[DEFINITION]
            start = used.get(pool, 0) % len(definitions)
            used[pool] = used.get(pool, 0) + unit.rows
            task[DEFINITION] = [d.text for d in definitions[start:] + definitions[:start]]
            origins = {d.text: d.origin for d in definitions}
        spec = TaskSpec(task, cfg.preset, corpus_root(cfg.cache_dir))
        cells.append(Cell(spec, unit.rows, key=unit.key, tags=unit.tags, origins=origins))
    return cells


def _definitions(unit: Unit, brainstormed: Optional[Path], pools: dict) -> Optional[list]:
    """The unit's definition pool, read once per source however many units share it."""
    if needs_brainstorm(unit):
        source = (brainstormed, unit.task["brainstorm"])
    else:
        path = _brainstorm_file(unit)
        if path is None:
            return None
        source = (path, None)
    if source not in pools:
        path, category = source
        pools[source] = read_definitions(path, category, source=None if category else str(path))
    return pools[source]


def _brainstorm_file(unit: Unit) -> Optional[Path]:
    """The brainstorm output that `task.task=file:...jsonl` names, if it is one."""
    path = file_path(unit.task.get(DEFINITION))
    if path is None or path.suffix != ".jsonl" or special_file(path):  # a FIFO is refused by its reader, not read
        return None
    try:
        with open(path, encoding="utf-8") as f:
            first = json.loads(f.readline() or "{}")
    except (OSError, ValueError, RecursionError):
        return None
    return path if isinstance(first, dict) and first.get("task_type") == "brainstorm" else None


def read_definitions(path: Path, category: Optional[str], source: Optional[str] = None) -> list:
    """Task definitions from brainstorm rows, in row order, with duplicates dropped (case, space and
    punctuation aside, or nearly the same); each remembers the brainstorm row it came from."""
    rows = [
        r
        for r in read_rows(path)
        if category is None or r.tags.get("category", r.attributes.get("category")) == category
    ]
    pool, definitions = Deduplicator(), []
    for r in sorted(rows, key=lambda r: (r.cell, r.row)):
        for i, text in enumerate(r.outputs.get("tasks") or [r.outputs.get(DEFINITION)]):
            if text and pool.add((r.cell, r.row, i), str(text)) is None:
                origin = {"brainstorm_row": r.row, **({"brainstorm_file": source} if source else {})}
                definitions.append(Definition(" ".join(str(text).split()), origin, r))
    if not definitions:
        raise UserError(f"{path} holds no task definitions: brainstorm again, or give task.task")
    return definitions


def count_definitions(path: Path) -> tuple:
    """(definitions kept, duplicates dropped) in a brainstorm output."""
    total = sum(len(r.outputs.get("tasks") or []) for r in read_rows(path))
    kept = len(read_definitions(path, None)) if total else 0
    return kept, total - kept


def write_flat_tasks(run: RunDir) -> Path:
    """flatten_tasks: tasks.jsonl beside a brainstorm's data, one row per distinct definition."""
    lines = (
        json.dumps(
            {
                DEFINITION: d.text,
                "category": d.source.attributes["category"],
                **d.origin,
                "model_name": d.source.model_name,
            },
            ensure_ascii=False,
        )
        + "\n"
        for d in read_definitions(run.data, None)
    )
    return run.write_lines(run.tasks_file.name, lines)

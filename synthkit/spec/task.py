"""A task type as data: its attributes and their domains, its prompt template and the JSON
schema of its answer, read from a task YAML. The engine knows tasks only through this."""

import functools
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import jsonschema
from omegaconf import DictConfig, OmegaConf

from synthkit.core.errors import UserError
from synthkit.core.record import RESERVED
from synthkit.spec.checks import build_checks
from synthkit.spec.parsing import parse_json_object, parse_list, schema_error
from synthkit.spec.templates import compile_template, render
from synthkit.spec.values import FILE_PREFIX, file_path, read_values_file

STRUCTURE_KEYS = ("name", "domains", "output", "prompt")
# Optional keys that are not prompt attributes:
#   answer: object (default) or list -- a list answer is stored under the task's one output key
#   brainstorm: the brainstorm category that supplies this task's `task` definitions when none are given
#   flatten_tasks: for list answers, also write tasks.jsonl with one row per item
#   paper: overrides that preset=paper applies (the paper's domains where they differ from the seed documents)
#   export: which output keys are the query, positive and negative of a training example (synthkit export)
#   checks: quality checks of the answers' meaning (synthkit/spec/checks.py)
#   relabel: the judge prompt of relabel=true (synthkit/quality/relabel.py)
#   judge: {rubric: ...}, what the LLM judge (judge=true) rates this task's rows against
OPTIONAL_KEYS = ("answer", "brainstorm", "flatten_tasks", "paper", "export", "checks", "relabel", "judge")
FREE = "any"  # domain of free-text attributes, such as a task definition


@dataclass(frozen=True)
class Attribute:
    name: str
    values: Optional[tuple]  # the domain; None for free text
    weights: Optional[tuple]
    differs_from: Optional[str]
    choices: Optional[tuple]  # the subset to draw from: the domain unless the user narrowed it
    fixed: Any = None  # set when the user fixed one value

    def draw(self, seed: int, row: int, drawn: Mapping[str, Any], stream: str = "") -> Any:
        if self.fixed is not None:
            return self.fixed
        if self.values is None:  # free text given as a list: cycle so every item gets its share
            return self.choices[row % len(self.choices)]
        # One generator per (seed, stream, row, attribute): fixing one attribute leaves the others' draws
        # alone, and `stream` (a cell of the run) keeps cells apart. A one-cell run has no stream.
        rng = random.Random(f"{seed}:{stream}:{row}:{self.name}" if stream else f"{seed}:{row}:{self.name}")
        choices = self.choices
        weights = self.weights if choices is self.values else None  # a user's subset is drawn uniformly
        if self.differs_from is not None:
            keep = [i for i, v in enumerate(choices) if v != drawn[self.differs_from]]
            choices = [choices[i] for i in keep]
            weights = [weights[i] for i in keep] if weights else None
        return rng.choices(choices, weights)[0] if weights else rng.choice(choices)

    def shares(self, other: Optional[Mapping] = None, even: bool = False) -> Optional[dict]:
        """{value: the share of rows drawn with it}, as `draw` draws; `other`: the shares of the attribute this
        one differs from; `even`: a grid gives each value the same rows, whatever the weights. None: free text."""
        if self.values is None:
            return None
        if self.fixed is not None:
            return {self.fixed: 1.0}
        choices = self.choices
        weights = self.weights if self.weights and choices is self.values and not even else [1] * len(choices)

        def normalized(excluded: Any) -> dict:
            total = sum(w for c, w in zip(choices, weights) if c != excluded)
            return {c: w / total for c, w in zip(choices, weights) if c != excluded} if total else {}

        if self.differs_from is None or other is None:
            return normalized(None)
        shares = dict.fromkeys(choices, 0.0)
        for value, p in other.items():
            for c, q in normalized(value).items():
                shares[c] += p * q
        return shares


class TaskSpec:
    def __init__(self, cfg: DictConfig | dict, preset: str = "seed", corpus_root: Optional[Path] = None):
        """`preset`: seed or paper (a typed config enum); `corpus_root`: where corpus domains keep their
        chunk indexes (the run's cache_dir), None for the default cache dir."""
        data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
        missing = [k for k in STRUCTURE_KEYS if not data.get(k)]
        if missing:
            raise UserError(
                f"task config lacks {', '.join(missing)}: every task YAML needs {', '.join(STRUCTURE_KEYS)}"
            )
        if str(getattr(preset, "value", preset)) == "paper":
            data = _merged(data, data.get("paper") or {})
        self.name: str = data["name"]
        self.data = data
        self.answer_format = data.get("answer", "object")
        if self.answer_format not in ("object", "list") or (self.answer_format == "list" and len(data["output"]) != 1):
            raise UserError(f"task {self.name}: answer is `object` or `list` (a list needs exactly one output key)")
        self.brainstorm_category: Optional[str] = data.get("brainstorm")
        self.attributes = self._attributes(data, corpus_root)
        self.output_keys = list(data["output"])
        for key in RESERVED.intersection(self.output_keys):
            raise UserError(
                f"task {self.name}: the output key {key!r} is reserved for synthkit's own fields; rename it"
            )
        self.checks = build_checks(
            data.get("checks"), self.name, self.output_keys, [a.name for a in self.attributes], str(data["prompt"])
        )
        self.judge_rubric, self.judge_on = _judge(data.get("judge"), self.name)
        self.schema = _object_schema(data["output"], self.name)
        self._validator = jsonschema.Draft202012Validator(self.schema)
        self._template = compile_template(data["prompt"], f"task {self.name}")

    def _attributes(self, data: dict, corpus_root: Optional[Path]) -> list:
        domains = data["domains"]
        settings = {k: v for k, v in data.items() if k not in STRUCTURE_KEYS + OPTIONAL_KEYS}
        for name in settings.keys() - domains.keys():
            raise UserError(f"task.{name} has no domain: declare it under domains: in the {self.name} task YAML")
        for name in domains.keys() - settings.keys():
            raise UserError(f"domains.{name} has no attribute: add `{name}: null` to the {self.name} task YAML")
        attributes = [_attribute(name, spec, settings[name], corpus_root) for name, spec in domains.items()]
        # An attribute that must differ from another is drawn after it.
        attributes.sort(key=lambda a: a.differs_from is not None)
        for a in attributes:
            if a.differs_from is not None:
                if a.differs_from not in domains:
                    raise UserError(f"domains.{a.name}.differs_from names no attribute: {a.differs_from}")
                other = settings[a.differs_from]
                if a.fixed is not None and a.fixed == other:
                    raise UserError(f"task.{a.name} must differ from task.{a.differs_from} (both are {other})")
        return attributes

    def draw_attributes(self, seed: int, row: int, stream: str = "") -> dict:
        drawn: dict = {}
        for a in self.attributes:
            drawn[a.name] = a.draw(seed, row, drawn, stream)
        return drawn

    def expected_shares(self, even: Sequence = ()) -> dict:
        """{attribute: {value: share}} of the rows, for attributes drawn from a domain; `even`: a grid's."""
        shares: dict = {}
        for a in self.attributes:
            drawn = a.shares(shares.get(a.differs_from), even=a.name in even)
            if drawn is not None:
                shares[a.name] = drawn
        return shares

    def language_outcomes(self) -> dict:
        """How the language check judged this task's texts so far: ok, wrong, unchecked:<why>."""
        total: dict = {}
        for c in self.checks:
            for outcome, n in getattr(c.test, "outcomes", {}).items():
                total[outcome] = total.get(outcome, 0) + n
        return total

    def drawn(self, attributes: Mapping[str, Any]) -> dict:
        """The attributes drawn from a domain (not free text such as a task definition)."""
        return {a.name: attributes[a.name] for a in self.attributes if a.values is not None}

    def render(self, attributes: Mapping[str, Any]) -> str:
        return render(self._template, attributes, f"task {self.name}")

    def parse(self, text: str) -> Any:
        """The answer as the schema sees it; raises ParseError. Never evaluates the text."""
        if self.answer_format == "list":
            return {self.output_keys[0]: parse_list(text)}
        return parse_json_object(text)

    def validation_error(self, answer: Any) -> Optional[str]:
        """The first reason the answer breaks the output schema, or None if it is valid."""
        return schema_error(self._validator, answer)


def _attribute(name: str, spec: Any, setting: Any, corpus_root: Optional[Path] = None) -> Attribute:
    if isinstance(spec, dict) and "corpus" in spec:  # chunks of the user's documents (synthkit/corpus/domain.py)
        from synthkit.corpus.domain import corpus_attribute

        return corpus_attribute(name, spec, setting, corpus_root)
    if isinstance(spec, dict):
        unknown = spec.keys() - {"values", "weights", "other_weight", "differs_from"}
        if unknown or "values" not in spec:
            raise UserError(
                f"domains.{name}: a domain is a list, `any`, or {{values, weights, other_weight, differs_from}}"
            )
        values, weights, differs_from = spec["values"], spec.get("weights"), spec.get("differs_from")
        if isinstance(weights, dict):  # {value: weight}; values not named weigh other_weight
            for value in weights.keys() - set(map(str, values)):
                raise UserError(f"domains.{name}.weights names {value!r}, which is not in the domain")
            weights = [weights.get(str(v), spec.get("other_weight", 0)) for v in values]
    else:
        values, weights, differs_from = spec, None, None
    if values == FREE:
        return _free_attribute(name, setting)
    if not isinstance(values, list) or not values:
        raise UserError(f"domains.{name} must be a non-empty list of values or `{FREE}`")
    if weights is not None and (len(weights) != len(values) or min(weights) < 0 or sum(weights) <= 0):
        raise UserError(f"domains.{name}.weights must be {len(values)} non-negative numbers, not all zero")
    values = tuple(values)
    choices, fixed = values, None
    if isinstance(setting, list):
        choices = tuple(_in_domain(name, v, values) for v in setting)
        if not choices:
            raise UserError(f"task.{name} is an empty list: give at least one value, or null to use the whole domain")
    elif setting is not None:
        fixed = _in_domain(name, setting, values)
    return Attribute(name, values, tuple(weights) if weights else None, differs_from, choices, fixed)


def _in_domain(name: str, value: Any, domain: Sequence) -> Any:
    for allowed in domain:
        if value == allowed or str(value) == str(allowed):
            return allowed  # the domain's own spelling, so 4.0 from the command line renders as 4
    raise UserError(f"task.{name}={value!r} is not allowed; allowed values: {', '.join(map(str, domain))}")


def _free_attribute(name: str, setting: Any) -> Attribute:
    path = file_path(setting)
    if path is not None:
        setting = read_values_file(name, path)
    if isinstance(setting, list):
        items = tuple(str(s) for s in setting if str(s).strip())
        if not items:
            raise UserError(f"task.{name} holds no values: give at least one")
        return Attribute(name, None, None, None, items)
    if setting is None or not str(setting).strip():
        raise UserError(
            f"task.{name} is not set: give it as task.{name}='...', a list [a,b], or {FILE_PREFIX}path/to/file.txt"
        )
    return Attribute(name, None, None, None, None, fixed=str(setting))


def _judge(judge: Any, task: str) -> tuple[Optional[str], bool]:
    """(the rubric of the LLM judge, whether the task itself switches the judge on) from its `judge:` block."""
    if judge is None:
        return None, False
    if (
        not isinstance(judge, dict)
        or "rubric" not in judge
        or not set(judge) <= {"rubric", "enabled"}
        or not str(judge["rubric"] or "").strip()
        or not isinstance(judge.get("enabled", False), bool)
    ):
        raise UserError(f"task {task}: judge is {{rubric: <what a good row of this task is>, enabled: true|false}}")
    return str(judge["rubric"]), judge.get("enabled", False)


def _merged(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = (
            _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


def _object_schema(output: Mapping[str, Any], task: str) -> dict:
    properties = {}
    for key, spec in output.items():
        # A bare type name is shorthand for a non-empty value of that type.
        if spec == "string":
            spec = {"type": "string", "minLength": 1}
        elif isinstance(spec, str):
            spec = {"type": spec}
        properties[key] = spec
    schema = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    try:
        _check_schema(json.dumps(schema, sort_keys=True))
    except (TypeError, ValueError):  # not JSON at all: let the meta-schema say what is wrong
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise UserError(f"task {task}: output is not a valid JSON schema: {e.message}") from None
    return schema


# A recipe makes a TaskSpec per cell (hundreds), nearly all with the same schema: checking a schema against the
# meta-schema costs milliseconds, most of a large recipe's start-up.
@functools.lru_cache(maxsize=256)
def _check_schema(schema_json: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_json))

"""A task type as data: its attributes and their domains, its prompt template and the JSON
schema of its answer, read from a task YAML. The engine knows tasks only through this."""

import difflib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from synthkit.core.errors import UserError
from synthkit.spec.languages import close_names, is_language_attribute, is_variant, resolve, same_language
from synthkit.spec.steps import build_steps, probe
from synthkit.spec.values import FILE_PREFIX, file_path, read_values_file

STRUCTURE_KEYS = ("name", "domains")  # and a prompt with its output, or steps (synthkit/spec/steps.py)
# Optional keys that are not prompt attributes:
#   answer: object (default) or list -- a list answer is stored under the task's one output key
#   brainstorm: the brainstorm category that supplies this task's `task` definitions when none are given
#   flatten_tasks: for list answers, also write tasks.jsonl with one row per item
#   paper: overrides that preset=paper applies (the paper's domains where they differ from the seed documents)
#   export: which output keys are the query, positive and negative of a training example (synthkit export)
#   checks: quality checks of the answers' meaning (synthkit/spec/checks.py)
#   relabel: the judge prompt of relabel=true (synthkit/quality/relabel.py)
#   judge: {rubric: ...}, what the LLM judge (judge=true) rates this task's rows against
OPTIONAL_KEYS = (
    "answer", "brainstorm", "flatten_tasks", "paper", "export", "checks", "relabel", "judge", "prompt", "output", "steps",
)  # fmt: skip
FREE = "any"  # domain of free-text attributes, such as a task definition
DOMAIN_KEYS = ("values", "weights", "other_weight", "differs_from", "sample")
MAX_LISTED = 15  # a refused value lists the domain's values up to this many; languages list the close ones


@dataclass(frozen=True)
class Attribute:
    name: str
    values: Optional[tuple]  # the domain; None for free text
    weights: Optional[tuple]  # one per value of `choices`, used unless the user narrowed them
    differs_from: Optional[str]
    choices: Optional[tuple]  # what is drawn from: the domain (less language variants) or the user's subset
    fixed: Any = None  # set when the user fixed one value
    narrowed: bool = False  # the user gave the subset: drawn uniformly
    task: str = ""  # the task's name, part of every draw's key
    language: bool = False  # holds language names: `differs_from` compares languages, not spellings
    sample: Optional[int] = None  # draw this many distinct values at once (a list), e.g. candidate personas
    _pools: dict = field(default_factory=dict, init=False, compare=False, repr=False)  # pool() by excluded value

    def draw(self, seed: int, row: int, drawn: Mapping[str, Any], stream: str = "") -> Any:
        if self.fixed is not None:
            return self.fixed
        if self.values is None:  # free text given as a list: cycle so every item gets its share
            return self.choices[row % len(self.choices)]
        # One generator per (seed, task, stream, row, attribute): fixing one attribute leaves the others' draws
        # alone, `stream` (a cell of the run, a sweep job) keeps cells apart, and the task keeps two tasks' runs
        # with one seed apart (row i of an STS run and of a bitext run would otherwise share unit and scores).
        rng = random.Random(f"{seed}:{self.task}:{stream}:{row}:{self.name}")
        choices, weights = self.pool(drawn[self.differs_from] if self.differs_from is not None else None)
        if self.sample is not None:
            return rng.sample(list(choices), min(self.sample, len(choices)))
        return rng.choices(choices, weights)[0] if weights else rng.choice(choices)

    def pool(self, excluded: Any = None) -> tuple:
        """(the values a draw picks from, their weights or None for uniform), less those that are `excluded`'s
        value (its language, for language attributes)."""
        weights = self.weights if not self.narrowed else None
        if excluded is None:
            return self.choices, weights
        key = (type(excluded), excluded) if isinstance(excluded, (str, int, float)) else None
        if key in self._pools:
            return self._pools[key]
        keep = [i for i, v in enumerate(self.choices) if not self.same(v, excluded)]
        pool = [self.choices[i] for i in keep], [weights[i] for i in keep] if weights else None
        if key is not None:
            self._pools[key] = pool
        return pool

    def same(self, a: Any, b: Any) -> bool:
        return same_language(a, b) if self.language else a == b

    def shares(self, other: Optional[Mapping] = None, even: bool = False) -> Optional[dict]:
        """{value: the share of rows drawn with it}, as `draw` draws; `other`: the shares of the attribute this
        one differs from; `even`: a grid gives each value the same rows, whatever the weights. None: free text."""
        if self.values is None or self.sample is not None:
            return None
        if self.fixed is not None:
            return {self.fixed: 1.0}

        def normalized(excluded: Any) -> dict:
            choices, weights = self.pool(excluded)
            weights = [1] * len(choices) if even or not weights else weights
            total = sum(weights)
            return {c: w / total for c, w in zip(choices, weights)} if total else {}

        if self.differs_from is None or other is None:
            return normalized(None)
        shares = dict.fromkeys(self.choices, 0.0)
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
        if "steps" not in data:
            missing += [k for k in ("output", "prompt") if not data.get(k)]
        if missing:
            raise UserError(
                f"task config lacks {', '.join(missing)}: every task YAML needs a name, domains, and a prompt with "
                "its output (or steps, each with its own)"
            )
        if str(getattr(preset, "value", preset)) == "paper":
            data = _merged(data, data.get("paper") or {})
        self.name: str = data["name"]
        self.data = data
        self.brainstorm_category: Optional[str] = data.get("brainstorm")
        self.attributes = self._attributes(data, corpus_root)
        self.steps = build_steps(data, self.name, [a.name for a in self.attributes])
        self.output_keys = [key for step in self.steps for key in step.output_keys]
        self.checks = [check for step in self.steps for check in step.checks]
        self.judge_rubric = next((step.judge_rubric for step in self.steps if step.judge_rubric), None)
        self.judge_on = any(step.judge_on for step in self.steps)

    def _attributes(self, data: dict, corpus_root: Optional[Path]) -> list:
        domains = data["domains"]
        settings = {k: v for k, v in data.items() if k not in STRUCTURE_KEYS + OPTIONAL_KEYS}
        for name in settings.keys() - domains.keys():
            raise UserError(
                f"task.{name} has no domain: declare it under domains: in the {self.name} task YAML"
                + _did_you_mean(name, domains)
            )
        for name in domains.keys() - settings.keys():
            raise UserError(f"domains.{name} has no attribute: add `{name}: null` to the {self.name} task YAML")
        by_name = {
            name: _attribute(name, spec, settings[name], corpus_root, self.name) for name, spec in domains.items()
        }
        for a in list(by_name.values()):
            if a.differs_from is None:
                continue
            other = by_name.get(a.differs_from)
            if other is None:
                raise UserError(f"domains.{a.name}.differs_from names no attribute: {a.differs_from}")
            if a.fixed is not None and other.fixed is not None and a.same(a.fixed, other.fixed):
                both = (
                    f"both are {a.fixed}" if a.fixed == other.fixed else f"{other.fixed} and {a.fixed} are one language"
                )
                raise UserError(f"task.{a.name} must differ from task.{other.name} ({both})")
            if a.fixed is not None and other.fixed is None and other.values is not None and other.differs_from is None:
                # The rule holds both ways: a fixed value steers the other attribute's draw away from it.
                by_name[a.name] = replace(a, differs_from=None)
                by_name[other.name] = replace(other, differs_from=a.name)
        attributes = sorted(by_name.values(), key=lambda a: a.differs_from is not None)  # the differing one after
        for a in attributes:
            if a.differs_from is not None:
                _check_can_differ(a, by_name[a.differs_from])
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
        return {a.name: attributes[a.name] for a in self.attributes if a.values is not None and a.sample is None}

    @property
    def multi_step(self) -> bool:
        return len(self.steps) > 1

    def probe(self, attributes: Mapping[str, Any]) -> None:
        """Render every step's prompt for these attributes: a template's mistake is one line before any request."""
        probe(self.steps, attributes)

    # A one-step task as it always was: its prompt, schema and answers are its one step's.
    def render(self, attributes: Mapping[str, Any]) -> str:
        return self.steps[0].render(attributes)

    @property
    def schema(self) -> dict:
        return self.steps[0].schema

    def parse(self, text: str) -> Any:
        return self.steps[0].parse(text)

    def validation_error(self, answer: Any) -> Optional[str]:
        return self.steps[0].validation_error(answer)


def _attribute(name: str, spec: Any, setting: Any, corpus_root: Optional[Path] = None, task: str = "") -> Attribute:
    if isinstance(spec, dict) and "corpus" in spec:  # chunks of the user's documents (synthkit/corpus/domain.py)
        from synthkit.corpus.domain import corpus_attribute

        return corpus_attribute(name, spec, setting, corpus_root)
    language = is_language_attribute(name)
    if isinstance(spec, dict):
        unknown = spec.keys() - set(DOMAIN_KEYS)
        if unknown or "values" not in spec:
            raise UserError(
                f"domains.{name}: a domain is a list, `any`, or {{{', '.join(DOMAIN_KEYS)}}}"
                + _did_you_mean(next(iter(unknown), ""), DOMAIN_KEYS)
            )
        values, weights, differs_from = spec["values"], spec.get("weights"), spec.get("differs_from")
        if isinstance(weights, dict) and isinstance(values, list):  # {value: weight}; others weigh other_weight
            named = {}
            for value, weight in weights.items():
                match = _match(value, values, language)
                if match is None:
                    raise UserError(
                        f"domains.{name}.weights names {value!r}, which is not in the domain"
                        + _did_you_mean(value, values, language)
                    )
                named[str(match)] = weight
            weights = [named.get(str(v), spec.get("other_weight", 0)) for v in values]
    else:
        values, weights, differs_from = spec, None, None
    if values == FREE:
        return _free_attribute(name, setting)
    if not isinstance(values, list) or not values:
        raise UserError(f"domains.{name} must be a non-empty list of values or `{FREE}`")
    if weights is not None and (
        not isinstance(weights, list)
        or len(weights) != len(values)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
        or min(weights) < 0
        or sum(weights) <= 0
    ):
        raise UserError(f"domains.{name}.weights must be {len(values)} non-negative numbers, not all zero")
    if language and all(isinstance(v, str) for v in values):
        values, weights = _one_name_per_language(values, weights)
    values = tuple(values)
    sample = spec.get("sample") if isinstance(spec, dict) else None
    if sample is not None:
        if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= len(values):
            raise UserError(f"domains.{name}.sample draws that many distinct values: a number from 1 to {len(values)}")
        if setting is not None:
            raise UserError(f"task.{name} draws {sample} values of its domain per row: leave it null")
        return Attribute(name, values, None, None, values, task=task, sample=sample)
    if isinstance(setting, list):
        choices = tuple(_in_domain(name, v, values, language) for v in setting)
        if not choices:
            raise UserError(f"task.{name} is an empty list: give at least one value, or null to use the whole domain")
        return Attribute(name, values, None, differs_from, choices, narrowed=True, task=task, language=language)
    fixed = _in_domain(name, setting, values, language) if setting is not None else None
    choices = values
    if language:  # a variant (Hindi Romanize, Chinese (Traditional)) is drawn only where the user names it
        keep = [i for i, v in enumerate(values) if not is_variant(v)]
        if keep and len(keep) < len(values) and (not weights or sum(weights[i] for i in keep) > 0):
            choices = tuple(values[i] for i in keep)
            weights = [weights[i] for i in keep] if weights else None
    return Attribute(
        name, values, tuple(weights) if weights else None, differs_from, choices, fixed, task=task, language=language
    )


def _check_can_differ(a: Attribute, other: Attribute) -> None:
    """Every value `other` can take leaves `a` something to draw (a narrowed list may hold only that language)."""
    if a.fixed is not None or a.values is None or other.values is None:
        return
    for value in (other.fixed,) if other.fixed is not None else other.choices:
        choices, weights = a.pool(value)
        if not choices or (weights and sum(weights) <= 0):
            raise UserError(
                f"task.{a.name} must differ from task.{other.name}, and when {other.name} is {value} no value of "
                f"{a.name} is left to draw: widen task.{a.name} or narrow task.{other.name}"
            )


def _one_name_per_language(values: list, weights: Optional[list]) -> tuple:
    """A language domain with each name as the registry spells it ("Chinese (Simplified)" is "Chinese"), names
    of one language merged (their weights added); names the registry does not know are kept as written."""
    merged: dict = {}
    for i, value in enumerate(values):
        name = resolve(value) or value
        merged[name] = merged.get(name, 0) + (weights[i] if weights else 1)
    if weights is None and len(merged) == len(values):
        return list(merged), None
    return list(merged), list(merged.values())


def _loose(value: Any) -> str:
    """How a value is compared when it is not spelt as the domain spells it: case, spaces, `-` and `_` aside."""
    return " ".join(str(value).replace("_", " ").replace("-", " ").casefold().split())


def _match(value: Any, domain: Sequence, language: bool = False) -> Any:
    """The domain's own value that `value` names, or None: the same value (4.0 is 4), the same text but for
    case and separators ("College", "high_school"), or for languages, a name, alias or code of one (de, german,
    "Chinese (Simplified)"), or a named variant of one (Hindi Romanize where Hindi is)."""
    for allowed in domain:
        if value == allowed or str(value) == str(allowed):
            return allowed  # the domain's own spelling, so 4.0 from the command line renders as 4
    if language and isinstance(value, str) and resolve(value) is not None:
        name = resolve(value)
        if name in domain:
            return name
        if is_variant(name) and any(same_language(name, allowed) for allowed in domain):
            return name
    loose = [allowed for allowed in domain if _loose(allowed) == _loose(value)]
    return loose[0] if len(loose) == 1 else None


def _in_domain(name: str, value: Any, domain: Sequence, language: bool = False) -> Any:
    match = _match(value, domain, language)
    if match is not None:
        return match
    if language:
        known = resolve(value) if isinstance(value, str) else None
        refused = f"task.{name}={value!r}" + (f" ({known})" if known and known != value else "")
        close = close_names(value, domain)
        if len(domain) <= MAX_LISTED:
            hint = f"; allowed values: {', '.join(map(str, domain))}"
        elif close:
            hint = f"; did you mean {' or '.join(close)}?"
        else:
            hint = (
                f", nor close to one of its {len(domain)}: write a name (German) or an ISO code (de); "
                "the lists are in synthkit/conf/languages.yaml"
            )
        raise UserError(f"{refused} is not one of this task's languages{hint}")
    listed = domain if len(domain) <= MAX_LISTED else domain[:MAX_LISTED]
    more = f", ... ({len(domain)} values)" if len(domain) > MAX_LISTED else ""
    raise UserError(
        f"task.{name}={value!r} is not allowed{_did_you_mean(value, domain)}; "
        f"allowed values: {', '.join(map(str, listed))}{more}"
    )


def _did_you_mean(value: Any, candidates, language: bool = False) -> str:
    """A near miss among `candidates` as a hint, " (did you mean X?)"; empty for none."""
    if language:
        close = close_names(value, candidates)
    else:
        by_loose = {_loose(c): c for c in candidates}
        close = [by_loose[c] for c in difflib.get_close_matches(_loose(value), list(by_loose), n=2, cutoff=0.75)]
    return f" (did you mean {' or '.join(map(str, close))}?)" if close else ""


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


def _merged(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = (
            _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged

"""The steps of a task: the prompts a row asks in order, each with its own output fields (its JSON schema), checks,
optional judge rubric and model. A task without `steps:` is one step, declared at the top of its YAML as always:

    prompt: ...          # one step: prompt, output, checks, judge at the top
    output: {...}

    steps:               # several: each sees the row's attributes and every earlier step's fields
      - name: query
        prompt: "Write a query for {{ task }} ..."
        output: {user_query: string, positive_document: string}
      - name: instruction
        prompt: "The query: {{ query.user_query }} ..."
        output: {instruction: string, instruction_negative: string}
        checks: [{check: distinct, fields: [positive_document, instruction_negative]}]
        llm: {model: gpt-4o}     # optional: this step's model, over the run's llm

Output keys are unique across steps: a row holds them side by side, as a one-step row holds its outputs. A step's
checks may name its own keys and any earlier step's."""

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import jsonschema

from synthkit.core.errors import UserError
from synthkit.core.record import RESERVED
from synthkit.spec.checks import build_checks
from synthkit.spec.parsing import parse_json_object, parse_list, schema_error
from synthkit.spec.templates import compile_template, render

STEP_KEYS = ("name", "prompt", "output", "checks", "judge", "llm", "answer")
# What a one-step task declares at its top; a task with steps declares these in each step.
ONE_STEP_KEYS = ("prompt", "output", "checks", "judge", "answer")
PLACEHOLDER = "<{step}.{key}>"  # an earlier step's field, where a prompt is rendered before any answer


@dataclass
class Step:
    name: str
    task: str
    output_keys: list
    schema: dict
    checks: list
    judge_rubric: Optional[str]
    judge_on: bool
    llm: Optional[dict]  # what this step's model changes of the run's llm, or None: the run's
    answer_format: str  # object, or list (one output key holding a list)
    prompt_text: str
    only: bool = True  # the task's one step: its requests, rows and errors are the task's, as always
    _template: Any = field(default=None, repr=False)
    _validator: Any = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """How errors name it."""
        return f"task {self.task}" if self.only else f"task {self.task}, step {self.name}"

    @property
    def schema_name(self) -> str:
        return self.task if self.only else f"{self.task}_{self.name}"

    def render(self, context: Mapping[str, Any]) -> str:
        """The prompt, from the row's attributes and every earlier step's fields (by step name)."""
        return render(self._template, context, self.where)

    def parse(self, text: str) -> Any:
        """The answer as the schema sees it; raises ParseError. Never evaluates the text."""
        if self.answer_format == "list":
            return {self.output_keys[0]: parse_list(text)}
        return parse_json_object(text)

    def validation_error(self, answer: Any) -> Optional[str]:
        """The first reason the answer breaks the step's output schema, or None if it is valid."""
        return schema_error(self._validator, answer)


def build_steps(data: dict, task: str, attributes: list) -> list:
    """The task's steps from its YAML `data` (resolved); `attributes`: the names of its attributes."""
    steps = data.get("steps")
    if steps is None:
        return [_step(data, task, task, attributes, {}, only=True)]
    stray = [k for k in ONE_STEP_KEYS if k in data]
    if stray:
        raise UserError(
            f"task {task} has steps: declare {', '.join(stray)} in each step, not at the top of the task YAML"
        )
    if not isinstance(steps, list) or not steps:
        raise UserError(f"task {task}: steps is a list of {{name, prompt, output}}, at least one")
    built, earlier = [], {}  # earlier: output key -> the step that writes it
    for number, spec in enumerate(steps, 1):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].isidentifier():
            raise UserError(f"task {task}: step {number} needs a name, a word such as `query` (got {spec!r:.60})")
        name = spec["name"]
        unknown = spec.keys() - set(STEP_KEYS)
        if unknown:
            raise UserError(f"task {task}, step {name}: unknown keys {', '.join(sorted(unknown))}; a step has "
                            f"{', '.join(STEP_KEYS)}")  # fmt: skip
        if any(step.name == name for step in built):
            raise UserError(f"task {task}: two steps are named {name}: give each step a name of its own")
        if name in attributes or name in RESERVED:
            raise UserError(
                f"task {task}, step {name}: the name is taken by "
                + ("an attribute" if name in attributes else "synthkit's own fields")
                + ": prompts could not tell them apart; rename the step"
            )
        step = _step(spec, task, name, attributes, earlier, only=False)
        for key in step.output_keys:
            if key in earlier:
                raise UserError(
                    f"task {task}: steps {earlier[key]} and {name} both write {key}: a row holds the fields of every "
                    "step side by side, so each needs a name of its own"
                )
            earlier[key] = name
        built.append(step)
    return built


def _step(spec: dict, task: str, name: str, attributes: list, earlier: dict, only: bool) -> Step:
    where = f"task {task}" if only else f"task {task}, step {name}"
    output = spec.get("output")
    if not isinstance(output, dict) or not output:
        raise UserError(f"{where}: output names no fields: give it {{key: type, ...}}, as each step writes something")
    if "prompt" not in spec:
        raise UserError(f"{where}: no prompt")
    answer_format = spec.get("answer", "object")
    if answer_format not in ("object", "list") or (answer_format == "list" and len(output) != 1):
        raise UserError(f"{where}: answer is `object` or `list` (a list needs exactly one output key)")
    keys = list(output)
    for key in RESERVED.intersection(keys):
        raise UserError(f"{where}: the output key {key!r} is reserved for synthkit's own fields; rename it")
    # A check may compare this step's fields with an earlier step's (a negative that copies the positive).
    named = task if only else f"{task}, step {name}"  # as checks' errors name it: "task <named>: ..."
    checks = build_checks(spec.get("checks"), named, [*earlier, *keys], attributes, str(spec["prompt"]))
    rubric, judge_on = _judge(spec.get("judge"), where)
    llm = spec.get("llm")
    if llm is not None and (not isinstance(llm, dict) or not llm):
        raise UserError(f"{where}: llm is what this step's model changes of the run's llm, e.g. {{model: gpt-4o}}")
    schema = _object_schema(output, where)
    return Step(
        name=name,
        task=task,
        output_keys=keys,
        schema=schema,
        checks=checks,
        judge_rubric=rubric,
        judge_on=judge_on,
        llm=llm,
        answer_format=answer_format,
        prompt_text=str(spec["prompt"]),
        only=only,
        _template=compile_template(spec["prompt"], where),
        _validator=jsonschema.Draft202012Validator(schema),
    )


def context(attributes: Mapping[str, Any], steps: list, outputs: Mapping[str, Any]) -> dict:
    """What a step's prompt sees: the row's attributes, and each earlier step's fields under its name."""
    seen = dict(attributes)
    for step in steps:
        seen[step.name] = {key: outputs[key] for key in step.output_keys if key in outputs}
    return seen


def probe(steps: list, attributes: Mapping[str, Any]) -> None:
    """Render every step's prompt before any request, earlier steps' fields standing in as placeholders: a field
    no earlier step writes, or a later step named, is one line naming the step and the field."""
    outputs: dict = {}
    for i, step in enumerate(steps):
        try:
            step.render(context(attributes, steps[:i], outputs))
        except UserError as e:
            later = [s.name for s in steps[i + 1 :] if f"'{s.name}' is undefined" in str(e)]
            if later:
                raise UserError(
                    f"{step.where}: its prompt names step {later[0]}, which comes later: a step sees only the "
                    "attributes and the steps before it"
                ) from None
            raise
        outputs.update({key: PLACEHOLDER.format(step=step.name, key=key) for key in step.output_keys})


def _judge(judge: Any, where: str) -> tuple:
    """(the rubric of the LLM judge, whether the step itself switches the judge on) from its `judge:` block."""
    if judge is None:
        return None, False
    if (
        not isinstance(judge, dict)
        or "rubric" not in judge
        or not set(judge) <= {"rubric", "enabled"}
        or not str(judge["rubric"] or "").strip()
        or not isinstance(judge.get("enabled", False), bool)
    ):
        raise UserError(f"{where}: judge is {{rubric: <what a good row of this task is>, enabled: true|false}}")
    return str(judge["rubric"]), judge.get("enabled", False)


def _object_schema(output: Mapping[str, Any], where: str) -> dict:
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
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise UserError(f"{where}: output is not a valid JSON schema: {e.message}") from None
    except jsonschema.SchemaError as e:
        raise UserError(f"{where}: output is not a valid JSON schema: {e.message}") from None
    return schema


# A recipe makes a TaskSpec per cell (hundreds), nearly all with the same schema: checking a schema against the
# meta-schema costs milliseconds, most of a large recipe's start-up.
@functools.lru_cache(maxsize=256)
def _check_schema(schema_json: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_json))

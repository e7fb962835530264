"""The optional LLM judge of rows (judge=true): a row whose answer passed the task's checks is shown to a model
with the prompt it answered and its task's rubric (`judge: {rubric: ...}` in the task YAML; `enabled: true` there
judges that task's rows without judge=true), which answers
{"score": 1-5, "reason": "..."}. A row under judge.min_score is asked again with the judge's reason (the check
`judge`), then rejected. The judge's calls go through a ModelCaller like the rows' (cache, limits, retries,
budget, ledger): the run's own, or one built for judge.llm. A judge answer that is not a valid rating is asked
again once; a second unreadable answer rejects the row ('judge answer unreadable'), or keeps it unrated with
judge.unreadable=keep: a demanding user wants no row nobody vouched for. Not `synthkit score`
(synthkit/results/scoring.py), which judges a finished run with an embedder."""

import json
from dataclasses import dataclass
from typing import Optional

import jsonschema

from synthkit.calls.providers import RowRefused
from synthkit.core.record import Row
from synthkit.spec.checks import CheckFailure
from synthkit.spec.parsing import ParseError, parse_json_object

NAME = "judge"  # the check's name in rejects and summaries
SCORE_TAG = "judge_score"  # the row's tag holding its score (synthkit.core.record.TAGS)
SCALE = (1, 5)
UNREADABLE = "judge answer unreadable"
SCHEMA = {
    "type": "object",
    "properties": {
        # an enum, not minimum/maximum: the numeric keywords are outside some providers' strict structured output
        "score": {"type": "integer", "enum": list(range(SCALE[0], SCALE[1] + 1))},
        "reason": {"type": "string", "minLength": 1},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

PROMPT = """You review synthetic training data for text-embedding models, strictly.

A model was asked:
<<<
{prompt}
>>>

It answered:
{answer}

Rubric for this task: {rubric}

Rate how well the answer serves as a training example for this task, from 1 (unusable: placeholder text,
echoed keys or instructions, wrong language, off-task, contradicts the request) to 5 (excellent). Answer with
the JSON object only: {{"score": <integer 1-5>, "reason": "<one short sentence: what is wrong, or why it is good>"}}"""

REASK = (
    'Your answer was not a valid rating ({problem}). Answer again with only the JSON object {{"score": <integer '
    '1-5>, "reason": "<one sentence>"}}, and nothing else.'
)


@dataclass(frozen=True)
class Rating:
    score: int
    reason: str


@dataclass(frozen=True)
class JudgeSettings:
    min_score: int = 3
    reask: bool = True  # a row under min_score is asked again (else rejected at once)
    keep_unreadable: bool = False
    every_task: bool = True  # judge=true; False: only the tasks whose YAML says `judge: {enabled: true}`


def judge_prompt(prompt: str, outputs: dict, rubric: str) -> str:
    answer = json.dumps(outputs, ensure_ascii=False, indent=1)
    return PROMPT.format(prompt=prompt.strip(), answer=answer, rubric=" ".join(rubric.split()))


def read_rating(text: str) -> tuple:
    """(the Rating in a judge's answer, or None; what is wrong with it, or None). Never evaluates the text."""
    try:
        parsed = parse_json_object(text)
    except ParseError as e:
        return None, str(e)
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(parsed))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        return None, f"{where}: {error.message}" if where else error.message
    return Rating(parsed["score"], " ".join(parsed["reason"].split())), None


class RowJudge:
    def __init__(self, caller, settings: JudgeSettings):
        self.caller, self.settings = caller, settings

    async def rate(self, task, row: Row, outputs: dict) -> Optional[CheckFailure]:
        """What the judge finds wrong with the row (a CheckFailure named `judge`), or None; its score goes into the
        row's tags. Raises the caller's RequestFailed / RunStopped like a row's own call."""
        rubric = getattr(task, "judge_rubric", None)
        if not rubric or not (self.settings.every_task or task.judge_on):
            return None  # a task without a rubric (brainstorm), or not switched on, is not judged
        row.tags.pop(SCORE_TAG, None)  # an earlier answer's score is not this one's
        messages = [{"role": "user", "content": judge_prompt(task.render(row.attributes), outputs, rubric)}]
        rating = problem = None
        text = ""
        for _ in range(2):  # one re-ask of an unreadable judge answer
            try:
                answer = await self.caller.call(messages, SCHEMA, NAME, f"{NAME}:{row.call_id}")
            except RowRefused as e:
                return CheckFailure(NAME, f"check judge: the judge model refused to rate the row ({e})", reask=False)
            completion = answer.completion
            row.usage.add(completion.prompt_tokens, completion.completion_tokens, answer.cost_usd, answer.cached)
            text = completion.text
            rating, problem = read_rating(text)
            if rating is not None:
                break
            messages = messages + [
                {"role": "assistant", "content": text},
                {"role": "user", "content": REASK.format(problem=problem)},
            ]
        if rating is None:
            if self.settings.keep_unreadable:
                return None
            return CheckFailure(NAME, f"check judge: {UNREADABLE} ({problem}; it said {text[:200]!r})", reask=False)
        row.tags[SCORE_TAG] = rating.score
        self.caller.ledger.judge_scored(rating.score)
        if rating.score < self.settings.min_score:
            return CheckFailure(
                NAME,
                f"check judge: scored {rating.score}/{SCALE[1]} (at least {self.settings.min_score} needed): "
                f"{rating.reason}",
                self.settings.reask,
            )
        return None


@dataclass
class JudgePlan:
    """The judge as the config asks for it, checked before the run makes its output dir."""

    settings: JudgeSettings
    llm: object = None  # an LLMConfig for another model, or None for the run's own
    provider: object = None
    price: object = None

    def judge(self, caller, cfg, stores, ledger_dir, ledger) -> RowJudge:
        """With judge.llm null the judge asks through the run's own caller; with another llm, through a
        ModelCaller of its own that shares the run's stores (synthkit.calls.stores: the response cache, rate
        schedules per endpoint, the budget ledger, so max_cost_usd counts both models) and ledger."""
        if self.llm is None:
            return RowJudge(caller, self.settings)
        from synthkit.calls.caller import ModelCaller

        judge_stores = stores.for_model(cfg, self.llm, self.price, ledger_dir)
        return RowJudge(ModelCaller(self.provider, self.llm, judge_stores, ledger), self.settings)

    async def aclose(self) -> None:
        if self.provider is not None:
            await self.provider.aclose()


def plan_judge(cfg, specs: list) -> Optional[JudgePlan]:
    """The run's judge plan, or None with judge.enabled off; one line for what cannot work."""
    from omegaconf import OmegaConf

    from synthkit.core.errors import UserError

    if not cfg.judge.enabled and not any(spec.judge_on for spec in specs):
        return None
    judge = OmegaConf.to_object(cfg.judge)
    for spec in specs if cfg.judge.enabled else ():
        if not spec.judge_rubric:
            raise UserError(
                f"judge=true needs a rubric for task {spec.name}: add `judge: {{rubric: ...}}` to its YAML, "
                "or run with judge=false"
            )
    settings = JudgeSettings(judge.min_score, judge.reask, judge.unreadable.value == "keep", cfg.judge.enabled)
    if judge.llm is None:
        return JudgePlan(settings)
    from synthkit.calls.cost import price_of
    from synthkit.calls.providers import make_provider
    from synthkit.core.secrets import protect

    llm = judge.llm
    if llm.provider == "mock":
        raise UserError("judge.llm=mock cannot rate rows: choose a real llm for the judge, or leave judge.llm unset")
    protect(llm.api_key_env or "")
    price = price_of(llm)
    if cfg.max_cost_usd is not None and price is None:
        raise UserError(
            f"max_cost_usd needs a price, and litellm has none for the judge's {llm.model}: "
            "set judge.llm.input_cost_per_mtok and judge.llm.output_cost_per_mtok"
        )
    return JudgePlan(settings, llm, make_provider(llm), price)

"""`dry_run=true`: what a run would ask for and roughly what it would cost, without calling a model
(nor importing litellm)."""

import json
from collections import Counter

from omegaconf import DictConfig, OmegaConf

from synthkit.calls.cost import CHARS_PER_TOKEN, price_of
from synthkit.core.config import check_bounds
from synthkit.core.paths import corpus_root
from synthkit.corpus.domain import check_corpus_used
from synthkit.engine.plan import needs_brainstorm, probe_spec, units_of
from synthkit.quality.llm_judge import judge_prompt
from synthkit.spec.steps import PLACEHOLDER, context
from synthkit.spec.task import TaskSpec

QUERY_CHARS = 80  # a generated query the relabelling judge reads, as priced before it exists (~15 words)
MAX_ROWS_DRAWN = 10_000  # enough to show a distribution; keeps dry runs instant for big runs
MAX_PROMPTS_RENDERED = 1_000
VALUES_SHOWN = 8


def describe(cfg: DictConfig) -> str:
    check_bounds(cfg)
    units = units_of(cfg)
    specs = [probe_spec(unit, cfg.preset, corpus_root(cfg.cache_dir)) for unit in units]
    check_corpus_used(cfg.get("corpus"), specs)
    if cfg.recipe is not None:
        lines = [
            f"dry run: {cfg.num_rows} rows of recipe {cfg.recipe.name} with {cfg.llm.model}; no model is called",
            "",
            "rows allocated per task type (most rows per language):",
        ]
        by_type: dict = {}
        for unit in units:
            by_type.setdefault(unit.key.split("/")[0], []).append(unit)
        for name, group in by_type.items():
            top = ", ".join(f"{u.key.split('/', 1)[1]} {u.rows}" for u in sorted(group, key=lambda u: -u.rows)[:5])
            lines.append(f"  {name:<22} {sum(u.rows for u in group):>7}   {top}, ... ({len(group)} languages)")
    else:
        lines = _single(cfg, specs[0])
    if any(map(needs_brainstorm, units)):
        lines += ["", "task definitions are brainstormed first (see the brainstorm task); estimates leave that out"]
    lines += ["", *_estimate(cfg, [(s, u.rows) for s, u in zip(specs, units)])]
    return "\n".join(lines)


def _single(cfg: DictConfig, task: TaskSpec) -> list:
    rows = cfg.num_rows
    drawn = [task.draw_attributes(cfg.seed, row) for row in range(min(rows, MAX_ROWS_DRAWN))]
    lines = [f"dry run: {rows} rows of {task.name} with {cfg.llm.model}; no model is called", ""]
    scope = f"the first {len(drawn)}" if len(drawn) < rows else f"the {len(drawn)}"
    lines.append(f"attributes drawn for {scope} rows:")
    width = max((len(a.name) for a in task.attributes), default=0)
    for a in task.attributes:
        counts = Counter(str(d[a.name]) for d in drawn).most_common()
        shown = ", ".join(f"{value} {n}" for value, n in counts[:VALUES_SHOWN])
        more = f", ... ({len(counts)} values)" if len(counts) > VALUES_SHOWN else ""
        lines.append(f"  {a.name:<{width}}  {shown}{more}")
    for step, prompt in zip(task.steps, _prompts(task, drawn[0]) if drawn else []):
        named = "" if step.only else f", step {step.name}"
        lines += ["", f"prompt of row 0{named}:", *("  " + line for line in prompt.splitlines())]
        schema = json.dumps(step.schema, indent=2).splitlines()
        lines += ["", f"schema of the answer{named}:", *("  " + line for line in schema)]
    return lines


def _prompts(task: TaskSpec, attributes: dict) -> list:
    """Each step's prompt for these attributes, an earlier step's fields standing in as placeholders."""
    prompts, outputs = [], {}
    for i, step in enumerate(task.steps):
        prompts.append(step.render(context(attributes, task.steps[:i], outputs)))
        outputs.update({key: PLACEHOLDER.format(step=step.name, key=key) for key in step.output_keys})
    return prompts


def _estimate(cfg: DictConfig, tasks: list) -> list:
    """Tokens and cost of every request the rows make (one per step; re-asks come on top). An earlier step's field
    in a prompt counts as its share of that step's llm.max_tokens."""
    prompt_tokens = completion_tokens = requests = 0
    other_models: dict = {}  # a step's own model (its llm:) -> [llm overrides, prompt tokens, completion tokens]
    judge = Counter()  # the LLM judge's requests, prompt tokens and completion tokens at most
    relabel = Counter()  # relabelling's
    for task, rows in tasks:
        sample = [task.draw_attributes(cfg.seed, row) for row in range(min(rows, MAX_PROMPTS_RENDERED))]
        prompts = [_prompts(task, a) for a in sample]
        for i, step in enumerate(task.steps):
            step_prompts = [p[i] for p in prompts]
            fields = sum(
                prompts[0][i].count(PLACEHOLDER.format(step=earlier.name, key=key)) / len(earlier.output_keys)
                for earlier in task.steps[:i]
                for key in earlier.output_keys
            ) if prompts else 0  # fmt: skip
            tokens = round((_mean_chars(step_prompts) / CHARS_PER_TOKEN + fields * cfg.llm.max_tokens) * rows)
            requests += rows
            if step.llm:
                model = other_models.setdefault(json.dumps(step.llm, sort_keys=True), [step.llm, 0, 0])
                model[1] += tokens
                model[2] += rows * cfg.llm.max_tokens
            else:
                prompt_tokens += tokens
                completion_tokens += rows * cfg.llm.max_tokens
            if step.judge_rubric and (cfg.judge.enabled or step.judge_on):
                # The judge reads the fenced prompt and answer (the answer counted at llm.max_tokens) after the
                # rubric, and answers within judge.max_tokens.
                fenced = _mean_chars([judge_prompt(p, {}, step.judge_rubric) for p in step_prompts])
                judge.update(
                    requests=rows,
                    prompt=round(fenced / CHARS_PER_TOKEN * rows) + rows * cfg.llm.max_tokens,
                    completion=rows * cfg.judge.max_tokens,
                )
        if cfg.relabel and prompts:
            relabel.update(_relabel_tokens(cfg, task, sample, rows))
    lines = [
        f"estimate ({requests:,} requests, one per row and step; re-asks add to it):",
        f"  prompt tokens      ~ {prompt_tokens:,} ({CHARS_PER_TOKEN} characters per token)",
        f"  completion tokens  <= {completion_tokens:,} (llm.max_tokens per request)",
    ]
    price = price_of(cfg.llm)
    if price is None:
        lines.append(
            f"  cost               unknown: litellm has no price for {cfg.llm.model} "
            "(set llm.input_cost_per_mtok and llm.output_cost_per_mtok)"
        )
    else:
        lines.append(
            f"  cost               ~ ${price.cost(prompt_tokens, 0):,.4f} for prompts, plus up to "
            f"${price.cost(0, completion_tokens):,.4f} for answers ({price.per_mtok()})"
        )
    lines.append(_batch_estimate(cfg, prompt_tokens, completion_tokens))
    for overrides, prompt, completion in other_models.values():
        lines.append(_step_model_estimate(cfg, overrides, prompt, completion))
    if relabel:
        counted = f"each row rated in 2 orders; a query counted as {QUERY_CHARS} characters, passages as drawn chunks"
        lines.append(_extra_estimate("relabelling", cfg.llm, relabel, counted))
    if judge:
        llm = cfg.judge.llm if cfg.judge.llm is not None else cfg.llm
        lines.append(_extra_estimate("LLM judge", llm, judge, "the rows' answers counted at llm.max_tokens"))
    return lines


def _step_model_estimate(cfg: DictConfig, overrides: dict, prompt_tokens: int, completion_tokens: int) -> str:
    llm = OmegaConf.merge(cfg.llm, overrides)
    price = price_of(llm)
    cost = (
        f"~ ${price.cost(prompt_tokens, completion_tokens):,.4f} ({price.per_mtok()})"
        if price is not None
        else f"unknown: litellm has no price for {llm.model}"
    )
    return (
        f"  steps on {llm.model:<10} ~ {prompt_tokens:,} prompt tokens + <= {completion_tokens:,} completion tokens; "
        f"cost {cost}"
    )


def _mean_chars(texts: list) -> float:
    return sum(map(len, texts)) / max(len(texts), 1)


def _relabel_tokens(cfg: DictConfig, task: TaskSpec, sample: list, rows: int) -> dict:
    """relabel=true: the judge's requests for `rows` rows of `task` (two per row), their prompts (the task's relabel
    prompt, fenced, over top_k passages the size of the drawn chunks) and their answers at most."""
    from synthkit.quality.relabel import ORDERS, plan_of, rating_cap, relabel_prompt

    plan = plan_of(task)
    k = min(plan.top_k, len(plan.attribute.index))
    chunks = [str(a[plan.attribute.name]) for a in sample]
    passages = [chunks[i % len(chunks)] for i in range(k)]
    prompt = relabel_prompt(plan, "q" * QUERY_CHARS, passages, f"task {task.name}: relabel")
    requests = len(ORDERS) * rows
    return {
        "requests": requests,
        "prompt": round(len(prompt) / CHARS_PER_TOKEN * requests),
        "completion": requests * rating_cap(cfg.judge.max_tokens, k),
    }


def _extra_estimate(name: str, llm, tokens: Counter, counted: str) -> str:
    """A line for requests beyond the rows' own (the judge's, relabelling's): `tokens` holds requests, prompt and
    completion (at most: judge.max_tokens per answer)."""
    price = price_of(llm)
    cost = (
        f"up to ~ ${price.cost(tokens['prompt'], tokens['completion']):,.4f} ({price.per_mtok()})"
        if price is not None
        else f"unknown: litellm has no price for {llm.model}"
    )
    return (
        f"  {name:<18} {tokens['requests']:,} more requests to {llm.model}: ~ {tokens['prompt']:,} prompt tokens "
        f"({counted}) + <= {tokens['completion']:,} completion tokens (judge.max_tokens per answer); cost {cost}; "
        "re-asks add to it"
    )


def _batch_estimate(cfg: DictConfig, prompt_tokens: int, completion_tokens: int) -> str:
    from synthkit.calls.batch.price import batch_price_of, check_batch
    from synthkit.core.errors import UserError

    try:
        check_batch(cfg.llm)
    except UserError:
        return f"  batch cost         none: synthkit's batch mode does not serve llm={cfg.llm.provider} (see README)"
    price, source = batch_price_of(cfg.llm)
    mode = "llm.batch=true" if cfg.llm.batch else "with llm.batch=true"
    if price is None:
        return f"  batch cost         unknown ({mode}): {source}"
    return (
        f"  batch cost         ~ ${price.cost(prompt_tokens, 0):,.4f} for prompts, plus up to "
        f"${price.cost(0, completion_tokens):,.4f} for answers ({mode}; {source}; answers within 24 h)"
    )

"""The evaluation of a finished run (`synthkit evaluate RUN [overrides]`, `evaluate=true` at the end of a run):

1. the rows export would give (placeholders refused, the scoring policy applied), less the held-out queries;
2. the evaluation sets read, and training rows that copy one of their queries left out (decontamination);
3. the base model scored on every set (its corpus embeddings cached), then fine-tuned once per seed and scored
   again; with `evaluate.ablate=task_type`, also once per task type left out;
4. per set, base and tuned, the delta with its paired bootstrap interval, the spread over seeds, in
   evaluation.json (written whole at the end: a refusal or a failure leaves an earlier one as it was).

Every check that needs no model comes first, so a mistake costs no training."""

import contextlib
import random

from synthkit.core.errors import UserError
from synthkit.core.paths import configured_cache_dir
from synthkit.results.evaluation.decontamination import corpus_documents_in_training, decontaminate
from synthkit.results.evaluation.examples import mine_negatives, run_examples
from synthkit.results.evaluation.report import summary_line
from synthkit.results.evaluation.retrieval import METRICS
from synthkit.results.evaluation.sets import check_names, kind_of, load_beir, load_sets
from synthkit.results.evaluation.statistics import compare, paired_bootstrap, verdict
from synthkit.results.rundir import RunDir

# What an evaluation takes (card: whether the dataset card is written anew); the rest is generation's.
OVERRIDABLE = ("evaluate", "embedder", "scoring", "cache_dir", "card")
SAMPLE_SEED = 0  # the held-out split, the max_rows sample, the negatives drawn: the same for every training seed
EXAMPLES_SHOWN = 5  # decontaminated rows reported by their text


def compose_evaluation(overrides: list, command: str = "evaluate"):
    """The config of an evaluation from evaluate, embedder, scoring and cache_dir overrides, its settings checked."""
    from synthkit.core.compose import compose_part

    refusal = (
        "is not an evaluate, embedder or scoring setting; give e.g. "
        "evaluate.base=DIR 'evaluate.sets=[path/to/beir,heldout]' evaluate.seeds=[0,1,2]"
    )
    cfg = compose_part(overrides, command, OVERRIDABLE, refusal)
    check_settings(cfg.evaluate)
    return cfg


def check_settings(settings) -> None:
    from synthkit.results.evaluation.models import check_base

    check_base(settings.base)
    if settings.metric not in METRICS:
        raise UserError(f"evaluate.metric={settings.metric} is not one of {', '.join(METRICS)}")
    seeds = list(settings.seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"evaluate.seeds={seeds}: give one or more distinct seeds, e.g. evaluate.seeds=[0,1,2]")
    check_names(list(settings.sets))


def check_before_run(cfg, placeholder: bool) -> None:
    """evaluate=true: what would make the evaluation at the end of the run fail, said before any row is paid for."""
    from synthkit.results.evaluation.models import require_libraries

    check_settings(cfg.evaluate)
    if placeholder:
        raise UserError(
            "evaluate=true with llm=mock: placeholder rows say nothing about the data; generate with a real llm"
        )
    for name in cfg.evaluate.sets:
        if kind_of(name) == "beir":  # read now; a Hub set is read at the end (a download)
            load_beir(name, cfg.evaluate.split)
    require_libraries()


def evaluate_run(run: RunDir, cfg, embedder_overrides: list = ()) -> dict:
    """Evaluate `run` as `cfg.evaluate` says; write evaluation.json; what it holds."""
    from synthkit.results.evaluation.models import check_device, require_libraries

    settings = cfg.evaluate
    check_settings(settings)
    made = run_examples(run)
    sets, held_out = load_sets(
        list(settings.sets), settings.split, made.examples, settings.heldout_share, SAMPLE_SEED, run
    )
    candidates = [e for e in made.examples if e.query_id not in held_out]
    queries = {(s.name, qid): text for s in sets for qid, text in s.queries.items()}
    kept, removed = decontaminate(candidates, queries, settings.decontamination)
    if not kept:
        raise UserError(
            f"every one of the {len(candidates)} training rows copies an evaluation query: nothing is left to train "
            "on (evaluate.decontamination.* sets what counts as a copy)"
        )
    if settings.max_rows and len(kept) > settings.max_rows:
        kept = random.Random(SAMPLE_SEED).sample(kept, settings.max_rows)
    require_libraries()
    check_device(settings.device)
    unmined = (
        mine_negatives(kept, settings.hard_negatives, run, list(embedder_overrides)) if settings.hard_negatives else 0
    )
    from synthkit.results.training_sets import st_datasets

    # The datasets `export --to sentence-transformers` writes; the task definition in each query's text: it differs
    # by row, and the trainer's prompts are per dataset.
    training_sets = st_datasets(kept, instruction="anchor", seed=SAMPLE_SEED)
    if not training_sets.datasets:
        raise UserError(
            f"no task type of the {len(kept)} training rows makes a training set (a single label or document each)"
        )
    trained = [e for e in kept if e.task_type in training_sets.datasets]
    scores = _train_and_score(settings, training_sets, sets, configured_cache_dir(cfg.get("cache_dir")), run)
    result = {
        "base": settings.base,
        "metric": settings.metric,
        "seeds": list(settings.seeds),
        "rows": len(made.examples),
        "held_out": len(held_out),
        "train_rows": len(trained),
        "decontaminated": len(removed),
        "decontaminated_examples": _examples(removed),
        "left_out_by_policy": made.dropped,
        "untrainable": _untrainable(kept, training_sets),
        "unmined": unmined,
        "training": scores["plans"],
        "sets": [_set_entry(s, scores, settings, trained, removed) for s in sets],
        "ablation": _ablation(scores, sets, settings),
        "settings": _plain(settings),
    }
    result["summary"] = summary_line(result)
    run.write_evaluation(result)
    return result


def _untrainable(examples: list, training_sets) -> dict:
    """{task type: rows} of the task types no dataset could be made of (a single label, a single document), and of
    the rows left out of the ones made (fewer mined negatives than the others: a dataset has one width)."""
    counts = dict(training_sets.left_out)
    for e in examples:
        if e.task_type not in training_sets.datasets:
            counts[e.task_type] = counts.get(e.task_type, 0) + 1
    return counts


def _train_and_score(settings, training_sets, sets: list, cache_root, run: RunDir) -> dict:
    """Per-query scores of the base and of each seed's tuned model (and of each ablation) on every set."""
    from synthkit.results.evaluation.finetune import fine_tune, learning_rate_for
    from synthkit.results.evaluation.models import fingerprint, load_model
    from synthkit.results.evaluation.retrieval import corpus_cache_file, per_query_scores

    def score(model, cached_as=None) -> dict:
        return {
            s.name: per_query_scores(
                model,
                s,
                settings.instruction,
                settings.encode_batch_size,
                corpus_cache_file(cache_root, cached_as, s.digest) if cached_as else None,
            )
            for s in sets
        }

    def tuned(subset: dict, seed: int, save: bool):
        model = load_model(settings.base, settings.device)
        plan = fine_tune(model, subset, settings, seed, learning_rate_for(model, settings))
        if save:
            model.save(str(run.model_dir(seed)))
        return plan, score(model)

    with _torch_threads(settings.threads), _memory_said_in_one_line(settings):
        base_model = load_model(settings.base, settings.device)  # a base that does not load fails before training
        out = {"base": score(base_model, fingerprint(settings.base)), "plans": [], "tuned": [], "ablation": {}}
        del base_model
        for seed in settings.seeds:
            plan, per_set = tuned(training_sets, seed, settings.save_models)
            out["plans"].append(plan)
            out["tuned"].append(per_set)
        if settings.ablate is not None and len(training_sets.datasets) > 1:
            for left_out in training_sets.datasets:
                subset = training_sets.without(left_out)
                out["ablation"][left_out] = [tuned(subset, seed, False)[1] for seed in settings.seeds]
    return out


@contextlib.contextmanager
def _memory_said_in_one_line(settings):
    """A batch too large for the device is a setting to change, not a bug: one line naming the settings."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError:
        raise UserError(
            f"evaluate ran out of memory on {settings.device or 'its device'}: lower evaluate.batch_size "
            f"({settings.batch_size}) or evaluate.encode_batch_size ({settings.encode_batch_size})"
        ) from None


@contextlib.contextmanager
def _torch_threads(threads):
    """evaluate.threads for the evaluation only: on a small machine shared with other work, two threads on two busy
    cores wait on each other (4-8x slower than one, measured by bench/evaluate_bench.py)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _set_entry(eval_set, scores: dict, settings, trained: list, removed: list) -> dict:
    name = eval_set.name
    metrics = {
        metric: compare(
            scores["base"][name][metric],
            [per_set[name][metric] for per_set in scores["tuned"]],
            list(settings.seeds),
            settings.bootstrap,
        )
        for metric in METRICS
    }
    headline = metrics[settings.metric]
    in_corpus = corpus_documents_in_training(trained, eval_set.corpus)
    own = [r for r in removed if r.set_name == name]
    return {
        "set": name,
        "metric": settings.metric,
        "base": headline["base"],
        "tuned": headline["tuned"],
        "delta": headline["delta"],
        "ci_low": headline["ci_low"],
        "ci_high": headline["ci_high"],
        "verdict": headline["verdict"],
        "queries": len(eval_set.queries),
        "documents": len(eval_set.corpus),
        "train_rows": len(trained),
        "decontaminated": len(own),
        "decontaminated_examples": _examples(own),
        "self_labelled": eval_set.self_labelled,
        "setting": _setting(eval_set, in_corpus),
        "training_rows_with_corpus_documents": in_corpus,
        "dropped_qrels": eval_set.dropped_qrels,
        "seed_spread": headline["seed_spread"],
        "seeds": headline["seeds"],
        "metrics": metrics,
    }


def _setting(eval_set, in_corpus: int) -> str:
    """Which setting the numbers are in: a reader must not take an in-domain or self-labelled gain for a general
    one."""
    if eval_set.self_labelled:
        return "self-labelled, in-domain: the run's own held-out queries, labelled by the run itself"
    if in_corpus:
        return (
            f"in-domain: {in_corpus} training rows use documents of its corpus (allowed: no label leaks, as in "
            "InPars and GPL)"
        )
    return "out-of-domain: no training text is a document of its corpus"


def _examples(removed: list) -> list:
    return [
        {"query": r.example.query, "set": r.set_name, "query_id": r.query_id, "rule": r.rule}
        for r in removed[:EXAMPLES_SHOWN]
    ]


def _ablation(scores: dict, sets: list, settings):
    """Leave-one-task-type-out, on the headline metric: what the model reaches without each task type, and what the
    type adds (the full model against the one trained without it, paired over queries, seeds pooled)."""
    if settings.ablate is None:
        return None
    import numpy as np

    if not scores["ablation"]:
        return {"by": "task_type", "note": "one task type only: nothing to leave out", "sets": []}
    metric = settings.metric
    out = []
    for s in sets:
        base = np.asarray(scores["base"][s.name][metric])
        full = np.mean([per_set[s.name][metric] for per_set in scores["tuned"]], axis=0)
        rows = []
        for left_out, runs in scores["ablation"].items():
            without = np.mean([per_set[s.name][metric] for per_set in runs], axis=0)
            delta, low, high = paired_bootstrap(base, without, settings.bootstrap)
            adds, adds_low, adds_high = paired_bootstrap(without, full, settings.bootstrap)
            rows.append(
                {
                    "left_out": left_out,
                    "tuned": float(without.mean()),
                    "delta": delta,
                    "ci_low": low,
                    "ci_high": high,
                    "adds": adds,
                    "adds_ci_low": adds_low,
                    "adds_ci_high": adds_high,
                    "verdict": verdict(adds_low, adds_high).replace("better", "helps").replace("worse", "hurts"),
                }
            )
        out.append({"set": s.name, "metric": metric, "left_out": sorted(rows, key=lambda r: -r["adds"])})
    return {"by": "task_type", "sets": out}


def _plain(settings) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(settings, resolve=True, enum_to_str=True)


def after_run(run: RunDir, cfg) -> str:
    """evaluate=true: the summary line; a failure keeps the rows and names the command that evaluates them later."""
    if not run.data.is_file():
        return "evaluation: no rows to evaluate"
    try:
        result = evaluate_run(run, cfg)
    except UserError as e:
        given = [o for o in _run_overrides(run) if o.lstrip("+~").startswith("evaluate.")]
        command = " ".join(["synthkit evaluate", str(run.path), *given])
        raise UserError(f"{e} (the rows are kept: evaluate them with {command})") from None
    return result["summary"]


def _run_overrides(run: RunDir) -> list:
    try:
        return run.overrides()
    except Exception:  # noqa: BLE001 - a run without readable overrides: the command alone
        return []

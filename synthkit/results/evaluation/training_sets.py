"""Training examples as sentence-transformers datasets, trained the way the recipe says: one dataset per task type
(multi-dataset training), each with the loss that fits it and its batch policy.

    examples -> {task type: TrainingSet(dataset, loss factory, in-batch negatives or not)}

- Retrieval, matching, bitext and every other pair task (FlagEmbedding type `only_1neg`): MultipleNegativesRanking
  over the other rows' documents in the batch and the row's own hard negatives; batches without duplicate texts
  (a duplicate would be a false negative).
- Classification (`symmetric_class`) and clustering: the other rows' labels are the same few labels, so an
  in-batch negative is often the row's own label: a cosine triplet loss, the row's label against its own misleading
  label only (FlagEmbedding's no_in_batch_neg), with plain shuffled batches.
- STS (`symmetric_sts`): CoSENT on (S1, S2, high score) and (S1, S3, low score), the grades the row was asked for
  (its high_score and low_score attributes; 1 and 0 where a row has none: CoSENT uses only their order).

The task definition goes into the query's text (`Instruct: {task}\\nQuery: `, as synthkit's exports write it):
it differs per row, and the trainer's `prompts` are per column or per dataset only; a column of its own would be
embedded as one more text. STS is symmetric: both sentences get it, as E5-mistral and FlagEmbedding do."""

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from synthkit.results.export import QUERY_TEMPLATE

CLASSIFICATION_KINDS = {"symmetric_class", "symmetric_clustering"}  # other rows' labels are false negatives
STS_KIND = "symmetric_sts"
NO_IN_BATCH = "synthkit: no in-batch negatives"  # marks a dataset's info: the batch sampler reads it


@dataclass
class TrainingSet:
    dataset: object  # datasets.Dataset
    loss: Callable  # model -> a sentence-transformers loss
    in_batch_negatives: bool  # False: plain shuffled batches, texts may repeat (labels, STS sentences)


def build_training_sets(examples: list, settings, seed: int = 0) -> dict:
    """{task type: TrainingSet} of the task types with rows to train on. `settings`: evaluate (scale,
    triplet_margin). `seed` draws the other rows' documents that stand in for a missing negative."""
    import datasets

    datasets.disable_progress_bars()
    rng = random.Random(seed)
    by_type: dict = {}
    for e in examples:
        by_type.setdefault(e.task_type, []).append(e)
    built = {}
    for task_type, group in sorted(by_type.items()):
        kind = group[0].kind
        if kind == STS_KIND:
            built[task_type] = _sts(group, settings)
        elif kind in CLASSIFICATION_KINDS:
            made = _classification(group, settings, rng)
            if made is not None:
                built[task_type] = made
        else:
            made = _in_batch(group, settings, rng)
            if made is not None:
                built[task_type] = made
    return built


def anchor(example) -> str:
    return QUERY_TEMPLATE.format(instruction=example.instruction) + example.query


def _sts(group: list, settings) -> TrainingSet:
    from datasets import Dataset, DatasetInfo
    from sentence_transformers.sentence_transformer import losses

    columns = {"sentence1": [], "sentence2": [], "score": []}
    for e in group:
        high, low = e.scores if e.scores else (1.0, 0.0)
        prefix = QUERY_TEMPLATE.format(instruction=e.instruction)
        for text, score in ((e.positive, high), (e.negative, low)):
            if text:
                columns["sentence1"].append(anchor(e))
                columns["sentence2"].append(prefix + text)
                columns["score"].append(float(score))
    return TrainingSet(
        Dataset.from_dict(columns, info=DatasetInfo(description=NO_IN_BATCH)),
        lambda model, scale=settings.scale: losses.CoSENTLoss(model, scale=scale),
        in_batch_negatives=False,
    )


def _classification(group: list, settings, rng: random.Random) -> Optional[TrainingSet]:
    from datasets import Dataset, DatasetInfo
    from sentence_transformers.sentence_transformer import losses

    labels = [e.positive for e in group]
    columns = {"anchor": [], "positive": [], "negative": []}
    for e in group:
        negative = e.negative or _another(rng, e.positive, labels)
        if negative is None or negative == e.positive:
            continue  # one label only: nothing to tell it from
        columns["anchor"].append(anchor(e))
        columns["positive"].append(e.positive)
        columns["negative"].append(negative)
    if not columns["anchor"]:
        return None
    return TrainingSet(
        Dataset.from_dict(columns, info=DatasetInfo(description=NO_IN_BATCH)),
        lambda model, margin=settings.triplet_margin: losses.TripletLoss(
            model, distance_metric=losses.TripletDistanceMetric.COSINE, triplet_margin=margin
        ),
        in_batch_negatives=False,
    )


def _in_batch(group: list, settings, rng: random.Random) -> Optional[TrainingSet]:
    """(anchor, positive[, negative_1..n]): a dataset has one set of columns, so where some rows have fewer
    negatives (none generated, fewer mined) the others' positives fill in: for MNRL an in-batch negative in all
    but name, as export fills FlagEmbedding's `neg`."""
    from datasets import Dataset
    from sentence_transformers.sentence_transformer import losses

    negatives = [([e.negative] if e.negative else []) + (list(e.mined.negatives) if e.mined else []) for e in group]
    width = max(len(n) for n in negatives)
    positives = [e.positive for e in group]
    columns: dict = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(width)}}
    for e, own in zip(group, negatives):
        filled = own + [_another(rng, e.positive, positives) for _ in range(width - len(own))]
        if any(n is None for n in filled):
            continue  # every row has this positive: nothing to contrast it with
        columns["anchor"].append(anchor(e))
        columns["positive"].append(e.positive)
        for i, negative in enumerate(filled):
            columns[f"negative_{i + 1}"].append(negative)
    if not columns["anchor"]:
        return None
    scale = settings.scale
    return TrainingSet(
        Dataset.from_dict(columns),
        lambda model: losses.MultipleNegativesRankingLoss(model, scale=scale),
        in_batch_negatives=True,
    )


def _another(rng: random.Random, positive: str, positives: list) -> Optional[str]:
    """Another row's positive (rejection sampling: positives are mostly distinct); None when all are this one."""
    for _ in range(20):
        candidate = rng.choice(positives)
        if candidate != positive:
            return candidate
    others = sorted(set(positives) - {positive})
    return rng.choice(others) if others else None


def untrainable(examples: list, training_sets: dict) -> dict:
    """{task type: rows} of task types no dataset could be made of (a single label, a single document)."""
    counts: dict = {}
    for e in examples:
        if e.task_type not in training_sets:
            counts[e.task_type] = counts.get(e.task_type, 0) + 1
    return counts

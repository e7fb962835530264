"""Training examples as sentence-transformers' trainer takes them: one dataset per task type, each with the loss it
wants, trained together as a multi-dataset (`SentenceTransformerTrainer(train_dataset=DatasetDict, loss=dict)`).

    from synthkit.results.training_sets import st_datasets
    sets = st_datasets(examples)        # examples: synthkit.results.export.to_examples(...)
    sets.datasets                       # {task type: datasets.Dataset}
    sets.losses                         # {task type: the sentence-transformers loss it wants, by class name}
    sets.loss_modules(model)            # those losses, built for `model`
    sets.prompts                        # SentenceTransformerTrainingArguments(prompts=...)
    sets.batch_sampler                  # SentenceTransformerTrainingArguments(batch_sampler=...)

- In-batch negatives (MultipleNegativesRankingLoss): retrieval, text matching, bitext. Other rows' positives are
  true non-answers there; the batch sampler keeps duplicate texts out of a batch.
- No in-batch negatives (TripletLoss, cosine): classification, where another row's label is often the same label
  (a false negative); the row's own label against its own misleading label only.
- STS (CoSENTLoss, or AnglELoss): (sentence1, sentence2, score) pairs, from a triplet S1, S2, S3 rated high and
  low on a 1-5 scale: (S1, S2, high) and (S1, S3, low), scores scaled to [0, 1].

The instruction (spec §5: `Instruct: {task definition}\\nQuery: ` before queries, never documents):
- `prompts` (the default): the trainer's per-dataset `prompts` where all rows of a task type share one definition
  (STS, bitext: their fixed ones), so the text stays bare and a model can leave the prompt out of pooling. The
  trainer has no per-row prompt, so where definitions differ by row (brainstormed tasks) the anchor carries it.
- `column`: bare texts and the definition in an `instruction` column, to format as another model wants. Not for
  sentence-transformers as is: its trainer embeds every text column.
- `anchor`: the instruction in every anchor's text (the export's form before this release)."""

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from synthkit.core.errors import UserError
from synthkit.core.extras import pip_install

QUERY_TEMPLATE = "Instruct: {instruction}\nQuery: "  # spec §5: queries get an instruction, documents do not
INSTRUCTION_MODES = ("prompts", "column", "anchor")
MANIFEST = "training.json"  # beside the datasets: each one's loss, in-batch negatives and prompts
# What a task type's export `type` (FlagEmbedding's names, synthkit.results.export) makes here.
STS_TYPES = {"symmetric_sts"}
NO_IN_BATCH_TYPES = {"symmetric_class", "symmetric_clustering"}
MNRL, TRIPLET, COSENT = "MultipleNegativesRankingLoss", "TripletLoss", "CoSENTLoss"
# Marks a dataset whose rows are not each other's negatives (its info's description, kept on disk): the batch
# sampler reads it. The trainer's dataset_name is a transform, not a column a sampler could read.
NO_IN_BATCH = "synthkit: no in-batch negatives"


@dataclass
class TrainingSets:
    """One dataset per task type, and what sentence-transformers' trainer needs to train each as it should."""

    datasets: dict  # task type -> datasets.Dataset
    losses: dict  # task type -> loss class name (MultipleNegativesRankingLoss, TripletLoss, CoSENTLoss)
    in_batch_negatives: dict  # task type -> whether other rows of a batch serve as its negatives
    prompts: dict = field(default_factory=dict)  # task type -> {column: prompt}, for the trainer's `prompts`
    instruction: str = "prompts"
    left_out: dict = field(default_factory=dict)  # task type -> rows left out (mined negatives: one width)

    def dataset_dict(self):
        import datasets

        return datasets.DatasetDict(self.datasets)

    def loss_modules(self, model, scale: float = 20.0, triplet_margin: float = 0.1) -> dict:
        """{task type: the loss module} for `model` (sentence-transformers is imported here)."""
        return {name: make(model) for name, make in self.loss_factories(scale, triplet_margin).items()}

    def loss_factories(self, scale: float = 20.0, triplet_margin: float = 0.1) -> dict:
        """{task type: model -> its loss module}, as the trainer takes losses it builds for its own model."""
        if self.instruction == "column":
            raise UserError(
                "training sets made with instruction='column' hold the instruction as a text column, which "
                "sentence-transformers would embed: make them with instruction='prompts' (or 'anchor') to train"
            )
        losses = _st_losses()
        built = {
            MNRL: lambda model: losses.MultipleNegativesRankingLoss(model, scale=scale),
            COSENT: lambda model: losses.CoSENTLoss(model, scale=scale),
            TRIPLET: lambda model: losses.TripletLoss(
                model, distance_metric=losses.TripletDistanceMetric.COSINE, triplet_margin=triplet_margin
            ),
        }
        return {name: built[loss] for name, loss in self.losses.items()}

    def without(self, task_type: str) -> "TrainingSets":
        """These sets less one task type (a leave-one-out ablation)."""
        keep = lambda d: {k: v for k, v in d.items() if k != task_type}  # noqa: E731
        return TrainingSets(
            keep(self.datasets), keep(self.losses), keep(self.in_batch_negatives), keep(self.prompts),
            self.instruction, keep(self.left_out),
        )  # fmt: skip

    def batch_sampler(self, dataset, **kwargs):
        """For SentenceTransformerTrainingArguments(batch_sampler=...): no duplicate texts in a batch where rows are
        each other's negatives (a duplicate would be a false negative), a plain random batch elsewhere (labels and
        STS sentences repeat across rows by design: no-duplicates would shrink those batches)."""
        from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler
        from torch.utils.data import RandomSampler

        if dataset.info.description != NO_IN_BATCH:
            return NoDuplicatesBatchSampler(dataset, **kwargs)
        return DefaultBatchSampler(RandomSampler(dataset, generator=kwargs.get("generator")), **kwargs)

    def save(self, out: Path) -> list:
        """The datasets as one DatasetDict on disk (datasets.load_from_disk(out)), a JSONL file per task type (the
        Hub's configs), and the manifest: each one's loss, in-batch negatives and prompts."""
        out = Path(out)
        self.dataset_dict().save_to_disk(str(out))
        written = [out]
        for name, dataset in self.datasets.items():
            dataset.to_json(str(out / f"{name}.jsonl"), force_ascii=False)
            written.append(out / f"{name}.jsonl")
        (out / MANIFEST).write_text(json.dumps(self.manifest(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return written

    def manifest(self) -> dict:
        return {
            "instruction": self.instruction,
            "datasets": {
                name: {
                    "rows": len(dataset),
                    "columns": dataset.column_names,
                    "loss": self.losses[name],
                    "in_batch_negatives": self.in_batch_negatives[name],
                    **({"prompts": self.prompts[name]} if name in self.prompts else {}),
                }
                for name, dataset in self.datasets.items()
            },
        }

    @classmethod
    def load(cls, path) -> "TrainingSets":
        """The sets a `synthkit export --to sentence-transformers` wrote to `path`."""
        import datasets

        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            loaded = datasets.load_from_disk(str(path))
        except (OSError, ValueError) as e:
            raise UserError(
                f"{path} is not a sentence-transformers export of synthkit ({type(e).__name__}): "
                "write one with synthkit export RUN --to sentence-transformers"
            ) from None
        described = manifest["datasets"]
        return cls(
            {name: loaded[name] for name in described},
            {name: d["loss"] for name, d in described.items()},
            {name: d["in_batch_negatives"] for name, d in described.items()},
            {name: d["prompts"] for name, d in described.items() if d.get("prompts")},
            manifest.get("instruction", "prompts"),
        )


def _st_losses():
    try:
        from sentence_transformers.sentence_transformer import losses  # sentence-transformers 6
    except ImportError:
        try:
            from sentence_transformers import losses
        except ImportError:
            raise UserError(f"training needs sentence-transformers: {pip_install('st')}") from None
    return losses


def st_datasets(examples: list, instruction: str = "prompts", template: str = QUERY_TEMPLATE, seed: int = 0):
    """TrainingSets from `examples` (synthkit.results.export.Example), one dataset per task type. `instruction`:
    prompts, column or anchor (see the module's doc); `template` formats it; `seed` draws the negatives of rows
    that have none where others of their type do (another row's positive, as FlagEmbedding's docs advise)."""
    if instruction not in INSTRUCTION_MODES:
        raise UserError(f"instruction={instruction!r}: choose one of {', '.join(INSTRUCTION_MODES)}")
    try:
        import datasets
    except ImportError:
        raise UserError(f"this export needs the datasets library: {pip_install('export')}") from None
    datasets.disable_progress_bars()
    rng = random.Random(seed)
    by_type: dict = {}
    for e in examples:
        by_type.setdefault(e.task_type, []).append(e)
    sets = TrainingSets({}, {}, {}, instruction=instruction)
    for task_type, group in by_type.items():
        kind = group[0].kind
        if kind in STS_TYPES:
            columns, loss, in_batch = _sts_columns(group), COSENT, False
        elif kind in NO_IN_BATCH_TYPES:
            columns, loss, in_batch = _triplet_columns(group, rng), TRIPLET, False
        else:
            columns, loss, in_batch = _retrieval_columns(group, rng), MNRL, True
        kept = columns.pop("_examples")
        if len(kept) < len(group) and kind not in STS_TYPES:
            sets.left_out[task_type] = len(group) - len(kept)
        if not kept:
            continue
        # The query side gets the instruction; both sides of a symmetric pair (STS), as E5-mistral and FlagEmbedding
        # instruct both texts of a symmetric task.
        sides = ["sentence1", "sentence2"] if kind in STS_TYPES else ["anchor"]
        instructions = [e.instruction for e in kept]
        if kind in STS_TYPES:  # two pairs from most rows
            instructions = [e.instruction for e in kept for text in (e.positive, e.negative) if text]
        shared = len(set(instructions)) == 1
        if instruction == "column":
            columns["instruction"] = instructions
        elif instruction == "prompts" and shared:
            sets.prompts[task_type] = {side: template.format(instruction=instructions[0]) for side in sides}
        else:
            for side in sides:
                columns[side] = [template.format(instruction=i) + text for i, text in zip(instructions, columns[side])]
        info = datasets.DatasetInfo(description=None if in_batch else NO_IN_BATCH)
        sets.datasets[task_type] = datasets.Dataset.from_dict(columns, info=info)
        sets.losses[task_type], sets.in_batch_negatives[task_type] = loss, in_batch
    return sets


def _sts_columns(group: list) -> dict:
    """(S1, S2, high) and (S1, S3, low) as (sentence1, sentence2, score), scores in [0, 1]."""
    columns: dict = {"sentence1": [], "sentence2": [], "score": [], "_examples": group}
    for e in group:
        for text, score in ((e.positive, e.positive_score), (e.negative, e.negative_score)):
            if text:
                columns["sentence1"].append(e.query)
                columns["sentence2"].append(text)
                columns["score"].append(float(score))
    return columns


def _triplet_columns(group: list, rng: random.Random) -> dict:
    """(anchor, positive, negative): the row's own negative (a classification row's misleading label); one drawn
    from another row's positive where it has none. Mined negatives are not used: the loss takes one."""
    positives = [e.positive for e in group]
    kept, negatives = [], []
    for e in group:
        negative = e.negative or _other(rng, e.positive, positives)
        if negative is not None:
            kept.append(e)
            negatives.append(negative)
    return {
        "anchor": [e.query for e in kept],
        "positive": [e.positive for e in kept],
        "negative": negatives,
        "_examples": kept,
    }


def _retrieval_columns(group: list, rng: random.Random) -> dict:
    """(anchor, positive) where no row of the type has a negative; (anchor, positive, negative) where some do (the
    others get another row's positive: a dataset has one set of columns); with mined negatives, anchor, positive,
    negative_1..n (sentence-transformers' n-tuple: one width, so rows that got fewer are left out)."""
    positives = [e.positive for e in group]
    generated = any(e.negative for e in group)
    negatives = []
    for e in group:
        own = [e.negative] if e.negative else ([_other(rng, e.positive, positives)] if generated else [])
        negatives.append([n for n in own if n is not None] + (list(e.mined.negatives) if e.mined is not None else []))
    width = max(len(n) for n in negatives)
    kept = [(e, n) for e, n in zip(group, negatives) if len(n) == width]
    columns: dict = {"anchor": [e.query for e, _ in kept], "positive": [e.positive for e, _ in kept]}
    mined = any(e.mined is not None for e in group)
    if width == 1 and not mined:
        columns["negative"] = [n[0] for _, n in kept]
    else:
        columns.update({f"negative_{i + 1}": [n[i] for _, n in kept] for i in range(width)})
    columns["_examples"] = [e for e, _ in kept]
    return columns


def _other(rng: random.Random, positive: str, positives: list):
    """Another row's positive, or None where every row has this one."""
    for _ in range(20):  # positives are mostly distinct: a few draws find one
        candidate = rng.choice(positives)
        if candidate != positive:
            return candidate
    others = sorted(set(positives) - {positive})
    return rng.choice(others) if others else None

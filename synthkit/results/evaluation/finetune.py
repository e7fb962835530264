"""Fine-tuning through sentence-transformers' own SentenceTransformerTrainer (no training loop of synthkit's): the
training sets of every task type at once, round-robin (or proportional), each with its loss and batch sampler, one
seed per run. Nothing is checkpointed: the model comes back in memory (saved only when asked)."""

import contextlib
import io
import math
import tempfile

STATIC_LEARNING_RATE = 0.05  # token vectors with nothing pretrained above them to protect
TRANSFORMER_LEARNING_RATE = 2e-5


def fine_tune(model, training_sets, settings, seed: int, learning_rate: float):
    """Train `model` (a SentenceTransformer, changed in place) on `training_sets` (synthkit.results.training_sets);
    the plan it followed: rows, loss and rows seen per epoch of each task type, steps taken."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import MultiDatasetBatchSamplers
    from transformers import PrinterCallback

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict) -> None:
            """None: the tuned model is measured, not published (its widget examples cost an encoding pass)."""

    sampler = str(getattr(settings.sampler, "value", settings.sampler))
    datasets = training_sets.datasets
    with tempfile.TemporaryDirectory(prefix="synthkit-train-") as scratch:  # the trainer wants an output_dir
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps or -1,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=learning_rate,
            warmup_steps=settings.warmup,  # a float under 1 is a share of the steps in transformers 5
            seed=seed,
            data_seed=seed,
            batch_sampler=training_sets.batch_sampler,
            multi_dataset_batch_sampler=MultiDatasetBatchSamplers(sampler),
            use_cpu=str(model.device) == "cpu",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=training_sets.dataset_dict(),
            loss=training_sets.loss_factories(settings.scale, settings.triplet_margin),
        )
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics to stdout
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars the arguments do not reach
            trainer.train()
    return {
        "rows": {name: len(d) for name, d in datasets.items()},
        "columns": {name: d.column_names for name, d in datasets.items()},
        "loss": {name: type(trainer.loss[name]).__name__ for name in datasets},
        "in_batch_negatives": dict(training_sets.in_batch_negatives),
        "steps": trainer.state.global_step,
        "seed": seed,
        "learning_rate": learning_rate,
        "sampler": sampler,
        "rows_per_epoch": rows_per_epoch(datasets, settings.batch_size, sampler),
    }


def rows_per_epoch(datasets: dict, batch_size: int, sampler: str) -> dict:
    """Rows of each task type one epoch sees: round-robin takes a batch of each type in turn and ends the epoch
    when the smallest type runs out, so the larger types are seen in part (more epochs, or max_steps, reshuffle)."""
    if sampler != "round_robin":
        return {name: len(d) for name, d in datasets.items()}
    fewest = min(math.ceil(len(d) / batch_size) for d in datasets.values())
    return {name: min(len(d), fewest * batch_size) for name, d in datasets.items()}


def learning_rate_for(model, settings) -> float:
    from synthkit.results.evaluation.models import is_static

    if settings.learning_rate:
        return float(settings.learning_rate)
    return STATIC_LEARNING_RATE if is_static(model) else TRANSFORMER_LEARNING_RATE

"""CPU of the answer checks per answer (the language identifier, scripts, degenerate answers, distinctness...), on
real answers: tests/good_answers.py's, every packaged task in 15 languages. The checks run on the event loop between
an answer and the next request, so this is what each answer holds the loop for.

    python bench/checks_bench.py [--repeat 5]
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from good_answers import DEFINITIONS, GOOD, answer  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import synthkit  # noqa: E402
from synthkit.spec import langid  # noqa: E402
from synthkit.spec.task import TaskSpec  # noqa: E402

TASKS = ("bitext_retrieval", "monolingual_triplet", "text_classification", "text_retrieval", "short_text_matching",
         "long_text_matching")  # fmt: skip


def cases() -> list:
    """(task, its spec, an answer, the attributes it was asked with) for every task, language and unit."""
    made = []
    for task in TASKS:
        definition = [f"task.task='{DEFINITIONS[task]}'"] if task in DEFINITIONS else []
        spec = TaskSpec(
            OmegaConf.to_container(synthkit.compose(f"task={task}", "llm=mock", *definition).task, resolve=True)
        )
        for language in sorted(GOOD):
            for unit in ("sentence", "passage"):
                attributes = spec.draw_attributes(0, 0)
                if task == "bitext_retrieval":
                    attributes |= {"unit": unit, "source_language": "English", "target_language": language}
                elif task == "monolingual_triplet":
                    attributes |= {"unit": unit, "language": language}
                else:
                    attributes |= {"language": language, "task": DEFINITIONS.get(task, "")}
                    attributes |= {"num_words": 50} if task == "text_retrieval" else {}
                shaped = task in ("bitext_retrieval", "monolingual_triplet")
                made.append(
                    (task, spec, answer(task, language, unit) if shaped else answer(task, language), attributes)
                )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    langid.identifier()  # loaded before the first request, as a run loads it
    per_check, per_task, answers, slowest = Counter(), Counter(), Counter(), Counter()
    for task, spec, outputs, attributes in cases():
        answers[task] += 1
        spent = 0.0
        for check in spec.checks:
            started = time.perf_counter()
            for _ in range(args.repeat):
                check.failure(outputs, attributes)
            seconds = (time.perf_counter() - started) / args.repeat
            per_check[task, check.name] += seconds
            spent += seconds
        per_task[task] += spent
        slowest[task] = max(slowest[task], spent)
    print("| task | checks per answer (us, mean) | slowest answer (us) | costliest check (us, mean) |")
    print("|---|---|---|---|")
    for task in TASKS:
        name, seconds = max(((n, s) for (t, n), s in per_check.items() if t == task), key=lambda x: x[1])
        mean = per_task[task] / answers[task]
        print(f"| {task} | {mean * 1e6:.0f} | {slowest[task] * 1e6:.0f} | {name} {seconds / answers[task] * 1e6:.0f} |")


if __name__ == "__main__":
    main()

"""Compares offline language identifiers for synthkit's language check on a labelled sample
(tests/data/langid_sample.jsonl: phrases, sentences and paragraphs in the XLM-R languages) and prints markdown
tables: identification accuracy by text length, load time, memory, time per call; then, for the check's rule
(synthkit.spec.langid.decide) at several confidence thresholds, the false rejects of correctly labelled texts and the
share of wrongly labelled texts (each text under every unrelated language name) that get rejected.

    python bench/langid_eval.py                # py3langid and lingua (pip install lingua-language-detector)
    python bench/langid_eval.py --only py3langid

Each identifier runs in its own process so that its load time and memory are its own."""

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthkit.spec.langid import (  # noqa: E402 (run as a script from a checkout)
    _LETTER,
    CODES,
    SHORT,
    decide,
    has_model,
    language_code,
)

SAMPLE = ROOT / "tests" / "data" / "langid_sample.jsonl"
KINDS = ("phrase", "sentence", "paragraph")
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)
CANDIDATES = ("py3langid", "lingua-low", "lingua-low-xlmr", "lingua-high-xlmr")
# lingua answers Bokmål and Nynorsk; synthkit's names know Norwegian as "no"
LINGUA_CODE = {"nb": "no"}


def load_sample() -> list:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _build(candidate: str):
    """A function text -> ranked [(code, probability)], and the codes the identifier knows."""
    if candidate == "py3langid":
        from py3langid import langid

        ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
        ident.rank("warm up")
        return ident.rank, set(ident.labels)
    from lingua import Language, LanguageDetectorBuilder

    languages = list(Language.all())
    if candidate.endswith("-xlmr"):  # only languages some synthkit name counts as
        wanted = {c for name in CODES for c in language_code(name)} | {"nb", "nn"}
        languages = [lang for lang in languages if lang.iso_code_639_1.name.lower() in wanted]
    builder = LanguageDetectorBuilder.from_languages(*languages)
    if candidate.startswith("lingua-low"):
        builder = builder.with_low_accuracy_mode()
    detector = builder.with_preloaded_language_models().build()

    def rank(text):
        return [(_lingua_code(c.language), c.value) for c in detector.compute_language_confidence_values(text)]

    return rank, {_lingua_code(lang) for lang in languages}


def _lingua_code(language) -> str:
    code = language.iso_code_639_1.name.lower()
    return LINGUA_CODE.get(code, code)


def run_one(candidate: str) -> dict:
    """Runs in a child process: rankings of every sample text, with the costs."""
    rows = load_sample()
    start, rss0 = time.perf_counter(), _rss_mb()
    rank, known = _build(candidate)
    load_s, rss = time.perf_counter() - start, _rss_mb() - rss0
    start = time.perf_counter()
    ranked = [[(c, round(p, 4)) for c, p in rank(r["text"])[:20]] for r in rows]
    per_call_ms = 1000 * (time.perf_counter() - start) / len(rows)
    return {"load_s": load_s, "rss_mb": rss, "per_call_ms": per_call_ms, "known": sorted(known), "ranked": ranked}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _short(text: str) -> bool:
    return len(_LETTER.findall(text)) < SHORT


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}% ({n}/{d})" if d else "-"


def report(results: dict, rows: list) -> None:
    print("## Identification (texts whose language the identifier models)\n")
    print("| identifier | phrase | sentence | paragraph | names modelled | load s | RSS MB | ms/call |")
    print("|---|---|---|---|---|---|---|---|")
    for cand, res in results.items():
        known = set(res["known"])
        hit, total = defaultdict(int), defaultdict(int)
        for r, ranked in zip(rows, res["ranked"]):
            own = language_code(r["lang"])[0]
            if has_model(r["lang"]) and own in known:
                total[r["kind"]] += 1
                hit[r["kind"]] += ranked[0][0] in language_code(r["lang"])
        modelled = sum(has_model(n) and language_code(n)[0] in known for n in {r["lang"] for r in rows})
        print(
            f"| {cand} | "
            + " | ".join(_pct(hit[k], total[k]) for k in KINDS)
            + f" | {modelled} | {res['load_s']:.2f} | {res['rss_mb']:.0f} | {res['per_call_ms']:.2f} |"
        )
    print("\n## The check's rule: false rejects (correct label) / rejected wrong labels, by threshold\n")
    print(
        "| identifier | threshold | false rejects phrase | sentence | paragraph "
        "| wrong labels rejected phrase | sentence | paragraph | wrong label is a name without model |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    names = sorted(CODES)
    for cand, res in results.items():
        for t in THRESHOLDS:
            fr, n, caught, pairs = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
            nm_caught = nm_pairs = 0
            for r, ranked in zip(rows, res["ranked"]):
                n[r["kind"]] += 1
                short = _short(r["text"])
                fr[r["kind"]] += decide(ranked, r["lang"], t, short).status == "wrong"
                own = set(language_code(r["lang"]))
                for other in names:
                    if own & set(language_code(other)):
                        continue  # a close language: not a wrong label
                    wrong = decide(ranked, other, t, short).status == "wrong"
                    pairs[r["kind"]] += 1
                    caught[r["kind"]] += wrong
                    if not has_model(other):
                        nm_pairs += 1
                        nm_caught += wrong
            print(
                f"| {cand} | {t} | "
                + " | ".join(_pct(fr[k], n[k]) for k in KINDS)
                + " | "
                + " | ".join(_pct(caught[k], pairs[k]) for k in KINDS)
                + f" | {_pct(nm_caught, nm_pairs)} |"
            )
    print("\n## False rejects at the default threshold\n")
    from synthkit.spec.langid import CONFIDENT

    for cand, res in results.items():
        for r, ranked in zip(rows, res["ranked"]):
            v = decide(ranked, r["lang"], CONFIDENT, _short(r["text"]))
            if v.status == "wrong":
                print(f"- {cand}: {r['lang']} {r['kind']} {r['text'][:40]!r} -> {v.found} {v.confidence:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=CANDIDATES, default=list(CANDIDATES))
    parser.add_argument("--child", choices=CANDIDATES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        json.dump(run_one(args.child), sys.stdout)
        return
    results = {}
    for cand in args.only:
        proc = subprocess.run([sys.executable, __file__, "--child", cand], check=False, capture_output=True, text=True)
        if proc.returncode:
            print(f"{cand}: skipped ({proc.stderr.strip().splitlines()[-1]})", file=sys.stderr)
            continue
        results[cand] = json.loads(proc.stdout)
    report(results, load_sample())


if __name__ == "__main__":
    main()

"""Compares offline language identifiers for synthkit's language check on a labelled sample
(tests/data/langid_sample.jsonl: phrases, sentences and paragraphs in the XLM-R languages) and prints markdown
tables: identification accuracy by text length, load time, memory, time per call; then, for the check's rule
(synthkit.spec.langid.decide) at several confidence thresholds, the false rejects of correctly labelled texts and the
share of wrongly labelled texts (each text under every unrelated language name) that get rejected; then the
wrong languages accepted and the false rejects of the rule as the tasks run it (with and without the implausible
rule, with the script check), on the sample and on word salads: texts of 4, 8 and 20 words drawn at random from
each language's own words in the sample (what a weak model writes when it strings words of the wrong language).

    python bench/langid_eval.py                # py3langid and lingua (pip install lingua-language-detector)
    python bench/langid_eval.py --only py3langid

Each identifier runs in its own process so that its load time and memory are its own."""

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import synthkit.spec.langid as langid  # noqa: E402 (run as a script from a checkout)
from synthkit.spec.langid import (  # noqa: E402
    _LETTER,
    CODES,
    SHORT,
    decide,
    has_model,
    language_code,
)
from synthkit.spec.script import script_reason  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "langid_sample.jsonl"
KINDS = ("phrase", "sentence", "paragraph")
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)
CANDIDATES = ("py3langid", "lingua-low", "lingua-low-xlmr", "lingua-high-xlmr")
# lingua answers Bokmål and Nynorsk; synthkit's names know Norwegian as "no"
LINGUA_CODE = {"nb": "no"}


SALAD_WORDS = (4, 8, 20)
SALADS_PER_SIZE = 3
# Scripts written without spaces: a salad's "words" are runs of this many characters, joined without spaces.
_NO_SPACE = re.compile("[\u3040-\u30ff\u3400-\u9fff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")
_PUNCTUATION = ".,;:!?¿¡\"'()«»“”„—–-。、！？"


def load_sample() -> list:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def word_salads(rows: list) -> list:
    """Per language of the sample, SALADS_PER_SIZE texts of each of SALAD_WORDS words drawn (seeded) from the
    words of its own texts: {"lang", "kind": "salad<N>", "text"}."""
    texts: dict = defaultdict(list)
    for r in rows:
        texts[r["lang"]].append(r["text"])
    salads = []
    for lang, own in sorted(texts.items()):
        spaced = not all(_NO_SPACE.search(t) for t in own)
        pool = [w for t in own for w in _salad_words(t, spaced)]
        for n in SALAD_WORDS:
            for k in range(SALADS_PER_SIZE):
                rng = random.Random(f"{lang}/{n}/{k}")
                words = [rng.choice(pool) for _ in range(n)]
                salads.append({"lang": lang, "kind": f"salad{n}", "text": (" " if spaced else "").join(words)})
    return salads


def _salad_words(text: str, spaced: bool) -> list:
    if spaced:
        return [w.strip(_PUNCTUATION) for w in text.split() if w.strip(_PUNCTUATION)]
    letters = "".join(ch for ch in text if ch not in _PUNCTUATION and not ch.isspace())
    return [letters[i : i + 2] for i in range(0, len(letters), 2)]


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
    ranked = [rank(r["text"]) for r in rows]
    per_call_ms = 1000 * (time.perf_counter() - start) / len(rows)
    # Kept whole: the implausible rule reads the wanted language's probability wherever it ranks.
    ranked = [[(c, round(p, 6)) for c, p in r] for r in ranked]
    salads = [[(c, round(p, 6)) for c, p in rank(r["text"])] for r in word_salads(rows)]
    return {
        "load_s": load_s,
        "rss_mb": rss,
        "per_call_ms": per_call_ms,
        "known": sorted(known),
        "ranked": ranked,
        "salads": salads,
    }


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


RULES = {  # the language check's rule, variants: (implausible rule on, script check on)
    "without the implausible rule": (False, False),
    "+ implausible": (True, False),
    "+ script check (as the tasks run it)": (True, True),
}
CLASSES = ("phrase", "sentence", "paragraph", *(f"salad{n}" for n in SALAD_WORDS))
# Short texts of names, which any language writes alike: a right answer under every language name.
NAMES = """Einstein|Shakespeare|Beethoven|Paris|Tokyo|Eiffel Tower|Mount Everest|Leonardo da Vinci|Statue of Liberty|
Charles de Gaulle|Sydney Opera House|New York City|Barack Obama|World War II|YouTube|iPhone|iPhone 15 Pro|eBay|
Microsoft Excel|Coca-Cola|Wi-Fi|UNESCO|NASA|DNA|COVID-19|H2O|CO2|Python|Bitcoin|Netflix""".replace("\n", "").split("|")


def report_accepted(results: dict, rows: list) -> None:
    """Wrong languages accepted and correct ones rejected by the check as the tasks run it, on the sample and on
    word salads; apart, the pairs where the identifier models both the text's language and the asked one."""
    salads = word_salads(rows)
    names = sorted(CODES)
    print("\n## Wrong languages accepted, by the rule as the tasks run it\n")
    print(
        "Each text under every unrelated language name (close languages aside), accepted when the check does not "
        "reject it; modelled: the pairs where the identifier models both the text's language and the asked one.\n"
    )
    print(
        "| identifier | rule | pairs | false rejects sample | salads | names (under every name) | "
        + " | ".join(CLASSES)
        + " | all |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(CLASSES) + "---|")
    for cand, res in results.items():
        texts = list(zip(rows, res["ranked"])) + list(zip(salads, res["salads"]))
        n_sample = len(rows)
        for label, (implausible, script) in RULES.items():
            saved = langid.IMPLAUSIBLE
            langid.IMPLAUSIBLE = langid.IMPLAUSIBLE if implausible else -1.0
            try:
                false, counts = _accepted(texts, names, script)
                names_rejected = sum(langid.check(text, name).status == "wrong" for text in NAMES for name in names)
            finally:
                langid.IMPLAUSIBLE = saved
            for which, (accepted, pairs) in counts.items():
                print(
                    f"| {cand} | {label} | {which} | {_pct(false['sample'], n_sample)} | "
                    f"{_pct(false['salad'], len(texts) - n_sample)} | {_pct(names_rejected, len(NAMES) * len(names))} | "
                    + " | ".join(_pct(accepted[k], pairs[k]) for k in CLASSES)
                    + f" | {_pct(sum(accepted.values()), sum(pairs.values()))} |"
                )


def _accepted(texts: list, names: list, script: bool) -> tuple:
    """False rejects (sample, salad) and, for all pairs and the modelled ones, (accepted, pairs) per class."""
    false = defaultdict(int)
    counts = {"all": (defaultdict(int), defaultdict(int)), "modelled": (defaultdict(int), defaultdict(int))}
    for r, ranked in texts:
        source = "salad" if r["kind"].startswith("salad") else "sample"
        false[source] += _rejected(r["text"], ranked, r["lang"], script)
        own = set(language_code(r["lang"]))
        for other in names:
            if own & set(language_code(other)):
                continue  # a close language: not a wrong label
            kept = not _rejected(r["text"], ranked, other, script)
            for which in ("all", "modelled") if has_model(r["lang"]) and has_model(other) else ("all",):
                counts[which][0][r["kind"]] += kept
                counts[which][1][r["kind"]] += 1
    return false, counts


def _rejected(text: str, ranked: list, name: str, script: bool) -> bool:
    if script and script_reason(text, name):
        return True
    return langid.check(text, name, ranked=ranked).status == "wrong"


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
    report_accepted(results, load_sample())


if __name__ == "__main__":
    main()

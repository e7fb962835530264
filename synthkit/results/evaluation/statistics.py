"""Honest numbers: a delta between two models on the same queries is given with a paired bootstrap 95 % interval
over those queries, and with its spread over training seeds; an interval that spans 0 is "no measurable change"."""

import numpy as np

BETTER, WORSE, NO_CHANGE = "better", "worse", "no measurable change"


def paired_bootstrap(base, tuned, resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> tuple:
    """(mean of tuned - base, low, high): the percentile interval of the mean difference over queries resampled
    with replacement, the same resample for both models (paired: each query is its own control)."""
    diff = np.asarray(tuned, dtype=float) - np.asarray(base, dtype=float)
    if diff.ndim != 1 or not len(diff):
        raise ValueError("paired_bootstrap needs two equal-length, non-empty per-query arrays")
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            diff[rng.integers(0, len(diff), (min(256, resamples - start), len(diff)))].mean(axis=1)
            for start in range(0, resamples, 256)  # blocks of resamples: memory stays small at 100k queries
        ]
    )
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(diff.mean()), float(low), float(high)


def verdict(low: float, high: float, seed_deltas=()) -> str:
    """Better or worse only when the interval excludes 0 and every seed's delta has that sign: a gain that one
    seed reverses is not one the data can be credited with."""
    if low > 0 and all(d > 0 for d in seed_deltas):
        return BETTER
    if high < 0 and all(d < 0 for d in seed_deltas):
        return WORSE
    return NO_CHANGE


def compare(base, tuned_per_seed: list, seeds: list, resamples: int) -> dict:
    """Base against the tuned models of each seed on one metric's per-query values: the pooled comparison (the
    seeds' per-query mean against the base, paired over queries), each seed's own, and the spread of the seeds'
    deltas."""
    base = np.asarray(base, dtype=float)
    pooled = np.mean([np.asarray(t, dtype=float) for t in tuned_per_seed], axis=0)
    delta, low, high = paired_bootstrap(base, pooled, resamples, seed=0)
    runs = []
    for seed, tuned in zip(seeds, tuned_per_seed):
        d, lo, hi = paired_bootstrap(base, tuned, resamples, seed=seed)
        runs.append({"seed": seed, "tuned": float(np.mean(tuned)), "delta": d, "ci_low": lo, "ci_high": hi})
    deltas = np.array([r["delta"] for r in runs])
    return {
        "base": float(base.mean()),
        "tuned": float(pooled.mean()),
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "verdict": verdict(low, high, deltas),
        "seeds": runs,
        "seed_spread": {
            "sd": float(deltas.std(ddof=1)) if len(deltas) > 1 else None,  # one seed: no spread measured
            "min": float(deltas.min()),
            "max": float(deltas.max()),
        },
    }

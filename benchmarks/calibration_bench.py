"""Calibration statistics at scale, printed with the commands' sizes, from one run.

    python benchmarks/calibration_bench.py [--raters 400] [--units 20000] [--rows 1000000]
                                           [--replicates 1000] [--skip-oracle]

1. Krippendorff's alpha of a ``[raters, units]`` reliability matrix (votes 0 / ½ / 1, 90 %
   missing) by ``pluralrm.calibration.krippendorff_alpha`` and by the ``krippendorff`` package
   (the GPL test oracle) on the same matrix: seconds and ratio, and that the values agree; then
   ``alpha_from_votes`` on ``--rows`` votes, which no dense matrix could hold.
2. Bootstrap intervals over ``--rows`` comparisons (4 groups, 4 votes per unit, 5,000
   annotators), ``--replicates`` replicates: per-group accuracy / NLL / Brier / ECE resampling
   comparison units and annotators, disagreement retention resampling units, a per-unit vote
   rate whose units compress to a few count patterns, and the worst case: every comparison its
   own cluster.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def seconds(fn):
    """(wall seconds, value) of one call; CPU seconds of the last call are kept in ``CPU``."""
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    CPU[0] = time.process_time() - cpu
    return time.perf_counter() - start, value


CPU = [0.0]


def load() -> str:
    """The machine's 1-minute load average and core count (timings on a shared box vary with it)."""
    import os

    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def reliability_data(rng, raters: int, units: int, domain: np.ndarray) -> np.ndarray:
    """``[raters, units]`` votes from ``domain``, 70 % agreeing with a per-unit truth, 90 % missing."""
    truth = rng.choice(domain, units)
    data = np.where(rng.random((raters, units)) < 0.7, truth, rng.choice(domain, (raters, units)))
    data[rng.random(data.shape) < 0.9] = np.nan
    return data


def alpha_benchmark(raters: int, units: int, rows: int, oracle: bool) -> None:
    from pluralrm.calibration import alpha_from_votes, krippendorff_alpha

    rng = np.random.default_rng(0)
    cases = [("votes 0/0.5/1", raters, units, np.array([0.0, 0.5, 1.0])),
             ("soft labels, 101 values", raters // 4, units // 4, np.linspace(0, 1, 101))]
    print("\n1. Krippendorff's alpha of a reliability matrix (90 % missing), same matrix for both")
    print(f"   {'data':<26}{'matrix':>16}{'level':>10}{'pluralrm s':>12}{'krippendorff s':>16}{'ratio':>8}   values")
    for name, r, u, domain in cases:
        data = reliability_data(rng, r, u, domain)
        for level in ("nominal", "interval"):
            ours, a = min(seconds(lambda: krippendorff_alpha(data, level)) for _ in range(3))
            line = f"   {name:<26}{f'{r} x {u:,}':>16}{level:>10}{ours:>12.3f}"
            if oracle:
                import krippendorff

                theirs, b = seconds(lambda: krippendorff.alpha(reliability_data=data, level_of_measurement=level))
                line += f"{theirs:>16.3f}{theirs / ours:>7.1f}x   {a:.6f} vs {b:.6f}"
            else:
                line += f"{'-':>16}{'-':>8}   {a:.6f}"
            print(line)
    truth = rng.choice([0.0, 0.5, 1.0], units)
    unit = rng.integers(0, rows // 4, rows)
    value = np.where(rng.random(rows) < 0.7, truth[unit % units], rng.choice([0.0, 0.5, 1.0], rows))
    for level in ("nominal", "ordinal", "interval", "ratio"):
        t, a = seconds(lambda: alpha_from_votes(unit, value, level))
        print(f"   alpha_from_votes, {rows:,} votes on {rows // 4:,} units, {level:<8}: {t:.2f} s (alpha {a:.4f})")


def bootstrap_benchmark(rows: int, replicates: int) -> None:
    from pluralrm.calibration import metrics
    from pluralrm.calibration.fidelity import retention_ratio, retention_terms
    from pluralrm.calibration.stats import bootstrap_sums, cluster_sums
    from pluralrm.calibration.votes import GroupRates

    rng = np.random.default_rng(1)
    groups, per_unit = 4, 4
    units = rows // per_unit
    unit = np.repeat(np.arange(units), per_unit)
    group = rng.integers(0, groups, rows)
    annotator = group * 1250 + rng.integers(0, 1250, rows)
    truth = 1 / (1 + np.exp(-(rng.normal(0, 1.5, (units, 1)) + rng.normal(0, 1, (units, groups)))))
    p_row = truth[unit, group]
    vote = (rng.random(rows) < p_row).astype(float)
    predictions = np.clip(p_row + rng.normal(0, 0.05, rows), 0.01, 0.99)
    edges = np.linspace(0.5, 1.0, 11)
    print(f"\n2. Bootstrap, {rows:,} comparisons, {units:,} units, 5,000 annotators, {groups} groups, "
          f"{replicates} replicates (BCa)")

    def per_group(cluster):
        results = []
        for g in range(groups):
            mask = group == g
            sums = cluster_sums(cluster[mask], metrics.calibration_terms(predictions[mask], vote[mask], edges))
            results.append(bootstrap_sums(sums, metrics.calibration_from_totals, replicates, seed=g, method="bca"))
        return results

    for name, cluster in (("units", unit), ("annotators", annotator)):
        t, results = seconds(lambda: per_group(cluster))
        r = results[0]
        print(f"   accuracy/NLL/Brier/ECE per group, resampling {name:<10}: {t:6.2f} s ({CPU[0]:5.2f} s CPU)  "
              f"(group 0 accuracy {r.estimate[0]:.4f} [{r.low[0]:.4f}, {r.high[0]:.4f}])")

    cell = unit * groups + group
    count = np.bincount(cell, minlength=units * groups).reshape(units, groups).astype(float)
    total = np.bincount(cell, weights=vote, minlength=units * groups).reshape(units, groups)
    rates = GroupRates(count, total, total)

    def retention():
        num, den = retention_terms(truth, rates, min_votes=2)

        def ratio(t):
            return retention_ratio(t[..., : groups + 1], t[..., groups + 1:])

        return bootstrap_sums(np.concatenate([num, den], 1), ratio, replicates, seed=0, method="bca")

    t, r = seconds(retention)
    print(f"   disagreement retention, resampling units             : {t:6.2f} s ({CPU[0]:5.2f} s CPU)  "
          f"(overall {r.estimate[-1]:.3f} [{r.low[-1]:.3f}, {r.high[-1]:.3f}])")

    def patterns():
        sums = np.stack([np.bincount(unit, minlength=units), np.bincount(unit, weights=vote, minlength=units)], 1)
        return bootstrap_sums(sums, lambda t: t[:, 1] / t[:, 0], replicates, seed=0, method="bca")

    t, r = seconds(patterns)
    print(f"   vote rate, units as count patterns (n, k)             : {t:6.2f} s ({CPU[0]:5.2f} s CPU)  "
          f"({r.estimate:.4f} [{r.low:.4f}, {r.high:.4f}])")

    def worst():
        terms = metrics.calibration_terms(predictions, vote, edges)[:, :4]
        return bootstrap_sums(terms, lambda t: t[:, 1] / t[:, 0], replicates, seed=0, method="bca")

    t, r = seconds(worst)
    print(f"   accuracy, every comparison its own cluster            : {t:6.2f} s ({CPU[0]:5.2f} s CPU)  "
          f"({r.estimate:.4f} [{r.low:.4f}, {r.high:.4f}])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=400)
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--skip-oracle", action="store_true", help="do not run the krippendorff package")
    args = parser.parse_args()
    from machine import code_version

    print(f"calibration benchmark ({load()}; {code_version()})")
    alpha_benchmark(args.raters, args.units, args.rows, not args.skip_oracle)
    bootstrap_benchmark(args.rows, args.replicates)
    print(f"\n(end: {load()})")


if __name__ == "__main__":
    main()

"""Canary verdicts over a rollout: error rates and detection times, fixed judge against sequential mode.

Simulated with fixed seeds, as an SRE team runs a canary: one latency metric (critical, direction
increase), lognormal samples with median 100 and a coefficient of variation of 30%
(sigma = sqrt(ln 1.09) = 0.2936 on the log scale), 10 samples a minute per side, the gate asked once
a minute for 30 minutes (looks at 1, 2, ..., 30 minutes, each with every sample so far), confidence
0.98 (alpha 0.02). Each run draws its baseline and canary once; the scenarios reuse the same draws
(a regression multiplies the canary's by 1.2 or 1.5), so they differ by the effect alone.

- fixed: today's fixed-horizon judge (`analysis.canary.judge`) applied at every look to all samples so
  far. Any-look false fail: the share of A/A runs failed at some look. The first adequate look is look
  1 (10 samples a side, the metric's min_samples).
- sequential: `mode: sequential` (`analysis.canary.sequential_look`, its state carried from look to look,
  min_duration 10m, max_duration 30m, look_interval 1m, quantile 0.5: the defaults); the run stops at
  its first pass or fail; at 30 minutes the fixed judge decides on the thinned samples.
- AR(1): the log-latency of each side is a Gaussian AR(1) with lag-1 autocorrelation 0.8 (target for
  sequential A/A: at most 2 alpha).
- Detection time: minutes to the first fail, a run never failed counting as infinite (the detected
  share is printed beside it). The comparison is the fixed judge asked once, at 30 minutes (nominal
  alpha 0.02 as the sequence; the A/A rate of that single test is printed too): detection time 30
  minutes when it fails. Speed-up: its median over the sequential median. Also printed, without a
  target: the shortest fixed horizon whose single test catches half the runs (chosen knowing the
  effect size, which a team does not).
- Tolerance 0 and 0.1 (the band is relative to the baseline median).
- Shape tests (per-metric `scale`, `distribution`, `zeros` keys), n = 200 a side, fixed judge: variance
  x3 at the same median, 10% of the canary's samples at 5x, non-zero 8% -> 30% of samples; and A/A for
  each. Printed as not available when the config loader refuses those keys.

    python benchmarks/verdicts.py [--runs 2000] [--seed 16] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.canary import CanaryConfig, CanaryConfigError, config_from_mapping, judge, sequential_look

CONFIDENCE = 0.98
ALPHA = 1.0 - CONFIDENCE
MEDIAN = 100.0
CV = 0.30
SIGMA = math.sqrt(math.log1p(CV**2))  # lognormal with this CV
PER_MINUTE = 10  # samples a minute per side
LOOKS = 30  # one a minute for 30 minutes
SAMPLES = PER_MINUTE * LOOKS
RHO = 0.8
TOLERANCES = (0.0, 0.1)
SHIFTS = (1.2, 1.5)
SEQUENTIAL = {"min_duration": "10m", "max_duration": "30m", "look_interval": "1m", "quantile": 0.5}
FULL_RUNS, QUICK_RUNS = 2000, 150
SHAPE_N = 200
SHAPE_NONZERO = (0.08, 0.30)  # share of samples that are not zero: baseline, canary (the 8% -> 30%)
SHAPE_OUTLIERS = (0.10, 5.0)  # share of the canary's samples, and the factor they are multiplied by
SHAPE_VARIANCE = 3.0


def canary_config(tolerance: float, mode: str, **shape: Any) -> CanaryConfig:
    metric = {"name": "latency", "tolerance": tolerance, "critical": True, "direction": "increase"} | shape
    return config_from_mapping({"metrics": [metric], "confidence": CONFIDENCE, "mode": mode, "sequential": SEQUENTIAL})


def latency(z: np.ndarray, scale: float = 1.0) -> np.ndarray:
    return MEDIAN * np.exp(scale * SIGMA * z)


def ar1(noise: np.ndarray, rho: float) -> np.ndarray:
    """Stationary Gaussian AR(1) along the last axis (unit variance) from standard normal noise."""
    out = np.empty_like(noise)
    out[..., 0] = noise[..., 0]
    scale = math.sqrt(1.0 - rho**2)
    for t in range(1, noise.shape[-1]):
        out[..., t] = rho * out[..., t - 1] + scale * noise[..., t]
    return out


def sequence(config: CanaryConfig, baseline: np.ndarray, canary: np.ndarray) -> tuple[str, int]:
    """A sequential rollout: (decision, look), stopping at the first pass or fail."""
    state, verdict = None, "continue"
    for look in range(1, LOOKS + 1):
        n = PER_MINUTE * look
        result, state = sequential_look(config, {"latency": (baseline[:n], canary[:n])}, timedelta(minutes=look), state)
        verdict = result.verdict
        if verdict in ("pass", "fail"):
            return verdict, look
    return verdict, LOOKS


def fixed_looks(config: CanaryConfig, baseline: np.ndarray, canary: np.ndarray) -> list[str]:
    """The fixed judge's verdict at every look, on all samples so far."""
    return [
        judge(config, {"latency": (baseline[: PER_MINUTE * k], canary[: PER_MINUTE * k])}).verdict
        for k in range(1, LOOKS + 1)
    ]


@dataclass
class Row:
    key: str
    scenario: str
    figure: str
    value: float | None
    shown: str
    target: str = ""
    met: bool | None = None


def share(hits: int, runs: int) -> str:
    return f"{hits / runs:.1%} ({hits}/{runs})"


def minutes(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:g} min"


def json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def rollout_rows(runs: int, rng: np.random.Generator) -> list[Row]:
    iid = rng.standard_normal((runs, 2, SAMPLES))
    correlated = ar1(rng.standard_normal((runs, 2, SAMPLES)), RHO)
    rows: list[Row] = []
    for tolerance in TOLERANCES:
        tol = f"tol{round(tolerance * 100)}"
        label = f"tolerance {tolerance:g}"
        fixed, seq = canary_config(tolerance, "fixed"), canary_config(tolerance, "sequential")
        for noise, name, bound in ((iid, "A/A", ALPHA), (correlated, "A/A AR(1) rho 0.8", 2 * ALPHA)):
            key = f"aa{'_ar1' if noise is correlated else ''}_{tol}"
            any_look = at_end = seq_fails = 0
            for b, c in noise:
                verdicts = fixed_looks(fixed, latency(b), latency(c))
                any_look += "fail" in verdicts
                at_end += verdicts[-1] == "fail"
                seq_fails += sequence(seq, latency(b), latency(c))[0] == "fail"
            scenario = f"{name}, {label}"
            rows += [
                Row(
                    f"{key}_fixed_any_look_false_fail",
                    scenario,
                    "fixed judge, any of 30 looks: false fail",
                    any_look / runs,
                    share(any_look, runs),
                ),
                Row(
                    f"{key}_fixed_30m_false_fail",
                    scenario,
                    "fixed judge once at 30 min: false fail",
                    at_end / runs,
                    share(at_end, runs),
                ),
                Row(
                    f"{key}_sequential_false_fail",
                    scenario,
                    "sequential, whole rollout: false fail",
                    seq_fails / runs,
                    share(seq_fails, runs),
                    f"<= {bound:g}",
                    seq_fails / runs <= bound,
                ),
            ]
        for factor in SHIFTS:
            key = f"shift{round((factor - 1) * 100)}_{tol}"
            scenario = f"+{(factor - 1):.0%} regression, {label}"
            fixed_fail_at = np.zeros((runs, LOOKS), dtype=bool)
            first_promote = seq_promote = seq_first_promote = 0
            detect = np.full(runs, math.inf)
            for i, (b, c) in enumerate(iid):
                baseline, canary = latency(b), factor * latency(c)
                verdicts = fixed_looks(fixed, baseline, canary)
                fixed_fail_at[i] = [v == "fail" for v in verdicts]
                first_promote += verdicts[0] == "pass"
                decision, look = sequence(seq, baseline, canary)
                seq_promote += decision == "pass"
                seq_first_promote += decision == "pass" and look == 1
                if decision == "fail":
                    detect[i] = look
            seq_median = float(np.median(detect))
            fixed_30 = np.where(fixed_fail_at[:, -1], float(LOOKS), math.inf)
            fixed_median = float(np.median(fixed_30))
            ratio = fixed_median / seq_median if math.isfinite(fixed_median) else math.nan
            power = fixed_fail_at.mean(axis=0)
            half = np.flatnonzero(power >= 0.5)
            horizon = float(half[0] + 1) if half.size else math.inf
            detected = int(np.isfinite(detect).sum())
            early = int((detect < LOOKS).sum())  # by the sequence itself, before the final fixed test
            if factor == SHIFTS[0]:
                rows += [
                    Row(
                        f"{key}_fixed_first_look_promote",
                        scenario,
                        "fixed judge, first look (10 a side): promote",
                        first_promote / runs,
                        share(first_promote, runs),
                    ),
                    Row(
                        f"{key}_sequential_first_look_promote",
                        scenario,
                        "sequential, first look: promote",
                        seq_first_promote / runs,
                        share(seq_first_promote, runs),
                        "<= 0.05",
                        seq_first_promote / runs <= 0.05,
                    ),
                    Row(
                        f"{key}_sequential_promote",
                        scenario,
                        "sequential, whole rollout: promote",
                        seq_promote / runs,
                        share(seq_promote, runs),
                    ),
                ]
            rows += [
                Row(
                    f"{key}_sequential_median_detect_min",
                    scenario,
                    f"sequential: median time to fail (detected {detected / runs:.1%})",
                    seq_median,
                    minutes(seq_median),
                ),
                Row(
                    f"{key}_sequential_detected",
                    scenario,
                    "sequential: detected share",
                    detected / runs,
                    share(detected, runs),
                ),
                Row(
                    f"{key}_sequential_detected_before_30m",
                    scenario,
                    "sequential: failed before the 30 min final test",
                    early / runs,
                    share(early, runs),
                ),
                Row(
                    f"{key}_fixed_30m_detected",
                    scenario,
                    "fixed judge once at 30 min: detected share",
                    float(fixed_fail_at[:, -1].mean()),
                    share(int(fixed_fail_at[:, -1].sum()), runs),
                ),
                Row(
                    f"{key}_speedup_vs_fixed_30m",
                    scenario,
                    "speed-up: fixed 30 min median / sequential median",
                    ratio,
                    f"{ratio:.2f}x" if math.isfinite(ratio) else "n/a",
                    ">= 3x",
                    bool(math.isfinite(ratio) and ratio >= 3),
                ),
                Row(
                    f"{key}_fixed_half_power_horizon_min",
                    scenario,
                    "fixed horizon catching half the runs in one test",
                    horizon,
                    minutes(horizon),
                ),
            ]
    return rows


def shape_available() -> bool:
    try:
        canary_config(0.1, "fixed", scale=True, distribution=True, zeros=True)
    except CanaryConfigError:
        return False
    return True


def variance_scale(ratio: float) -> float:
    """The factor on the log-scale sigma that multiplies a lognormal's variance by `ratio`, same median:
    Var = (u - 1) u median^2 with u = exp(sigma^2)."""
    u0 = math.exp(SIGMA**2)
    target = ratio * (u0 - 1.0) * u0
    u = (1.0 + math.sqrt(1.0 + 4.0 * target)) / 2.0
    return math.sqrt(math.log(u)) / SIGMA


SHAPE_KEYS = ("scale", "distribution", "zeros")


def shape_samples(test: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline, A/A canary, changed canary) of one shape scenario, n = SHAPE_N a side."""
    b, a, c = (latency(rng.standard_normal(SHAPE_N)) for _ in range(3))
    if test == "scale":
        changed = latency(rng.standard_normal(SHAPE_N), variance_scale(SHAPE_VARIANCE))
    elif test == "distribution":
        changed = np.where(rng.random(SHAPE_N) < SHAPE_OUTLIERS[0], SHAPE_OUTLIERS[1] * c, c)
    else:
        b, a = (np.where(rng.random(SHAPE_N) < SHAPE_NONZERO[0], v, 0.0) for v in (b, a))
        changed = np.where(rng.random(SHAPE_N) < SHAPE_NONZERO[1], c, 0.0)
    return b, a, changed


def shape_rows(runs: int, rng: np.random.Generator) -> list[Row]:
    """Per shape test: A/A false fail and caught share with the test on (None when this checkout's config
    refuses the key), and, for reference, the caught share of the location test alone."""
    available = shape_available()
    scenarios = {
        "scale": f"variance x{SHAPE_VARIANCE:g}, same median",
        "distribution": f"{SHAPE_OUTLIERS[0]:.0%} of canary samples at {SHAPE_OUTLIERS[1]:g}x",
        "zeros": f"non-zero {SHAPE_NONZERO[0]:.0%} -> {SHAPE_NONZERO[1]:.0%} of samples",
    }
    location = canary_config(0.1, "fixed")
    rows = []
    for test in SHAPE_KEYS:
        config = canary_config(0.1, "fixed", **{test: True}) if available else None
        false_fails = caught = location_caught = 0
        for _ in range(runs):
            b, a, changed = shape_samples(test, rng)
            location_caught += judge(location, {"latency": (b, changed)}).verdict == "fail"
            if config is not None:
                false_fails += judge(config, {"latency": (b, a)}).verdict == "fail"
                caught += judge(config, {"latency": (b, changed)}).verdict == "fail"
        scenario = f"shape {scenarios[test]}, n {SHAPE_N}"
        rows.append(
            Row(
                f"shape_{test}_location_only_caught",
                scenario,
                "location test alone (no shape key): caught",
                location_caught / runs,
                share(location_caught, runs),
            )
        )
        for key, figure, hits, target, met in (
            (
                "aa_false_fail",
                f"`{test}: true`, A/A: false fail",
                false_fails,
                f"<= {ALPHA:g}",
                false_fails / runs <= ALPHA,
            ),
            ("caught", f"`{test}: true`: caught", caught, ">= 0.9", caught / runs >= 0.9),
        ):
            rows.append(
                Row(
                    f"shape_{test}_{key}",
                    scenario,
                    figure,
                    hits / runs if available else None,
                    share(hits, runs) if available else "not available",
                    target,
                    met if available else None,
                )
            )
    return rows


def table(rows: list[Row]) -> str:
    header = ("scenario", "figure", "value", "target", "met")
    body = [
        (r.scenario, r.figure, r.shown, r.target or "-", "-" if r.met is None else ("yes" if r.met else "NO"))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help=f"simulated rollouts per scenario (default {FULL_RUNS})")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs per scenario unless --runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args()
    runs = args.runs or (QUICK_RUNS if args.quick else FULL_RUNS)
    if runs < 1:
        parser.error("--runs: expected at least 1")
    start = time.perf_counter()
    rows = rollout_rows(runs, np.random.default_rng([args.seed, 1]))
    rollout_s = time.perf_counter() - start
    shapes = shape_rows(runs, np.random.default_rng([args.seed, 2]))
    seconds = time.perf_counter() - start
    unmet = [r.key for r in rows + shapes if r.met is False]
    if args.json:
        out: dict[str, Any] = {"runs": runs, "seed": args.seed, "seconds": round(seconds, 1)}
        out |= {r.key: json_number(r.value) for r in rows + shapes}
        out["shape_tests_available"] = shape_available()
        out["unmet"] = unmet
        print(json.dumps(out, indent=2))
        return
    print(
        f"{runs} simulated rollouts per scenario (seed {args.seed}): lognormal latency, CV {CV:.0%}, "
        f"{PER_MINUTE} samples a minute a side, a look a minute for {LOOKS} minutes, confidence {CONFIDENCE:g}"
    )
    print(table(rows))
    if not shape_available():
        print("shape tests: not available in this checkout")
    print(table(shapes))
    print(f"{len(unmet)} target(s) not met: {', '.join(unmet) or 'none'}")
    print(f"rollouts {rollout_s:.1f} s, shape tests {seconds - rollout_s:.1f} s, total {seconds:.1f} s")


if __name__ == "__main__":
    main()

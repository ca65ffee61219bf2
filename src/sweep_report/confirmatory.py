"""The confirmatory part of a study's report: its primary metric, the family of comparisons named
in its preset (``study:``), paired t-tests adjusted together by Holm's method, and a two one-sided
tests (TOST) verdict on equivalence within the preset's margin.

The margin is absolute (``margin``), or relative to the reference's error (``relative_margin``:
a share of 1 - mean for a metric where higher is better, of the mean itself for a loss), so a
metric near its ceiling is not declared "equivalent" within a margin wider than its headroom.
Each comparison also states the smallest difference it could detect (80% power, two-sided, at the
Bonferroni level that bounds Holm's first step). With ``gain_share`` a study also reports each
arm's share of the oracle's gain over random removal, G = (arm - random) / (oracle - random),
with a bootstrap interval over seeds (percentile, or BCa with ``g_interval: bca``), and no
reduction's G as a reference line.

With ``sign_flip: true`` each comparison also gets the exact sign-flip permutation p-value of its
paired differences (every one of the 2^n sign patterns; scipy's ``permutation_test``), Holm-adjusted
over the same family, and "better" or "worse" only where it agrees with the t-test: with n pairs
its smallest two-sided p is 2 / 2^n, so a verdict never rests on the t-test's normality alone.

A comparison is an arm (one setting of the swept keys) against a reference setting, paired by
seed (and by the ``match`` keys, e.g. the fill); the difference is arm - reference, signed so
that "better" follows the metric's direction. Holm's step-down adjustment (statsmodels) controls
the family-wise error over the whole family; the simultaneous intervals are Bonferroni's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from src.sweep_report.runs import Run
from src.sweep_report.stats import higher_is_better, metric_of

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_RESAMPLES = 10_000


@dataclass(frozen=True)
class FamilyPart:
    """Every arm matching one of ``arms`` against the runs matching ``against``, paired by seed and
    by the ``match`` keys."""

    against: dict[str, str]
    arms: list[dict[str, str]]
    match: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GainShare:
    """The two references of G: the oracle's runs and random removal's."""

    oracle: dict[str, str]
    random: dict[str, str]


@dataclass(frozen=True)
class Study:
    name: str
    primary: str
    margin: float
    family: list[FamilyPart]
    relative_margin: float | None = None
    gain_share: GainShare | None = None
    sign_flip: bool = False
    g_interval: str = "percentile"
    # secondary comparisons (e.g. a map against its own controls), Holm-adjusted on their own so
    # that they cost the primary family no power
    controls: list[FamilyPart] = field(default_factory=list)

    def margin_for(self, reference: np.ndarray, metric: str) -> float:
        """The equivalence margin of a comparison with these reference values."""
        if self.relative_margin is None:
            return self.margin
        error = 1.0 - float(np.mean(reference)) if higher_is_better(metric) else float(np.mean(reference))
        return self.relative_margin * abs(error)

    def describe_margin(self) -> str:
        if self.relative_margin is None:
            return f"±{self.margin:g}"
        return f"±{self.relative_margin:.0%} of the reference's error (1 − mean, or the mean of a loss), per comparison"


def study_of(runs: Sequence[Run]) -> Study | None:
    """The ``study:`` block the runs were configured with (the first run that has one)."""
    for run in runs:
        block = run.value("study")
        if block:
            spec = cast(dict[str, Any], OmegaConf.to_container(block, resolve=True))
            parts = [_family_part(part) for part in spec["family"]]
            gain = spec.get("gain_share")
            return Study(
                str(run.value("task_name", "study")),
                spec["primary"],
                float(spec["margin"]),
                parts,
                relative_margin=None if spec.get("relative_margin") is None else float(spec["relative_margin"]),
                gain_share=None if not gain else GainShare({k: str(v) for k, v in gain["oracle"].items()}, {k: str(v) for k, v in gain["random"].items()}),
                sign_flip=bool(spec.get("sign_flip", False)),
                g_interval=str(spec.get("g_interval", "percentile")),
                controls=[_family_part(part) for part in spec.get("controls") or []],
            )
    return None


def _family_part(part: Mapping[str, Any]) -> FamilyPart:
    return FamilyPart(
        against={k: str(v) for k, v in part["against"].items()},
        arms=[{k: str(v) for k, v in arm.items()} for arm in part["arms"]],
        match=list(part.get("match") or []),
    )


# a selector's value for "the run does not set this key" (e.g. the plain baseline beside arms that
# add background_swap=mixed_rand or model.rrr_weight)
UNSET = "unset"


def matches(run: Run, selector: Mapping[str, str]) -> bool:
    return all(_matches(run, key, value) for key, value in selector.items())


def _matches(run: Run, key: str, value: str) -> bool:
    if value == UNSET:
        return key not in run.overrides
    if key == "reduction.rounds" and value == "0":  # no reduction, however the run said so (reduction=none too)
        return not run.reduced
    setting = run.setting(key)
    # a YAML boolean reads back as Python's True; a selector may write it as YAML does (true)
    return setting == value or (value.lower() in ("true", "false") and str(setting).lower() == value.lower())


def label(run: Run, keys: Sequence[str]) -> str:
    """An arm's name: its reduction settings, or "no reduction" plus what else the run sets
    (``background_swap=mixed_rand``, ``model.rrr_weight=...``)."""
    # the preset names a stage of a study, not a setting: what it sets is named by its keys
    own = [k for k in keys if k != "experiment" and k in run.overrides]
    if not run.reduced:
        return ", ".join(["no reduction", *(f"{k}={run.overrides[k]}" for k in own if not k.startswith("reduction."))])
    named = [k for k in keys if k != "reduction.rounds" and (k.startswith("reduction.") or k in own)]
    return ", ".join(f"{k.removeprefix('reduction.')}={run.setting(k)}" for k in named) or "reduction"


def selector_label(selector: Mapping[str, str]) -> str:
    named = {k: v for k, v in selector.items() if v != UNSET}
    if named.get("reduction.rounds") == "0":
        return ", ".join(["no reduction", *(f"{k}={v}" for k, v in named.items() if k != "reduction.rounds")])
    return ", ".join(f"{k.removeprefix('reduction.')}={v}" for k, v in named.items())


def paired_differences(runs: Sequence[Run], keys: Sequence[str], part: FamilyPart, metric: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(arm label, arm values, reference values) per arm of ``part``, paired by seed and the
    ``match`` keys (several matching reference runs are averaged); pairs with a missing value are
    dropped."""
    references = [r for r in runs if matches(r, part.against) and r.metrics]
    arms: dict[str, list[Run]] = {}
    for run in runs:
        if run.metrics and not matches(run, part.against) and any(matches(run, arm) for arm in part.arms):
            arms.setdefault(label(run, keys), []).append(run)
    out = []
    for name, group in arms.items():
        values, base = [], []
        for run in sorted(group, key=lambda r: r.seed):
            partners = [metric_of(r, metric) for r in references if r.seed == run.seed and all(r.setting(m) == run.setting(m) for m in part.match)]
            value, partner = metric_of(run, metric), (float(np.mean(partners)) if partners else math.nan)
            if not (math.isnan(value) or math.isnan(partner)):
                values.append(value)
                base.append(partner)
        if values:  # an arm with no reference to pair with is no comparison
            out.append((name, np.array(values), np.array(base)))
    return out


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels); NaN stays NaN and is not counted in the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, math.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], alpha=ALPHA, method="holm")[1]
    return adjusted


def tost_p(arm: np.ndarray, reference: np.ndarray, margin: float) -> float:
    """The TOST p-value of equivalence within +-``margin`` of paired samples (statsmodels'
    ``ttost_paired``): below alpha, the difference lies inside the margin."""
    if len(arm) < 2 or np.std(arm - reference) == 0:
        return math.nan
    return float(ttost_paired(arm, reference, -margin, margin)[0])


def detectable_difference(differences: np.ndarray, tests: int) -> float:
    """The smallest mean paired difference a two-sided paired t-test detects with :data:`POWER`
    at level alpha / ``tests`` (Holm's first step), given the differences' observed spread."""
    n = len(differences)
    spread = float(np.std(differences, ddof=1)) if n > 1 else math.nan
    if n < 2 or spread == 0 or math.isnan(spread):
        return math.nan
    effect = TTestPower().solve_power(effect_size=None, nobs=n, alpha=ALPHA / max(tests, 1), power=POWER, alternative="two-sided")
    return float(effect) * spread


def sign_flip_p(arm: np.ndarray, reference: np.ndarray) -> float:
    """The exact two-sided sign-flip permutation p-value of the mean paired difference: under no
    effect each difference's sign is as likely flipped, so all 2^n sign patterns are equally
    likely (scipy's ``permutation_test`` with ``permutation_type="samples"``, exhaustive)."""
    if len(arm) < 2 or np.all(arm == reference):
        return math.nan
    result = scipy_stats.permutation_test(
        (np.asarray(arm, dtype=float), np.asarray(reference, dtype=float)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
        alternative="two-sided",
    )
    return float(result.pvalue)


def _share(a: np.ndarray, r: np.ndarray, o: np.ndarray, axis: int = -1) -> np.ndarray:
    gain = o.mean(axis) - r.mean(axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gain != 0, (a.mean(axis) - r.mean(axis)) / gain, np.nan)


def gain_share(
    arm: np.ndarray, random: np.ndarray, oracle: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, method: str = "percentile"
) -> tuple[float, float, float]:
    """G = (mean arm - mean random) / (mean oracle - mean random) over seeds paired by position,
    and its 95% bootstrap interval: seeds resampled with replacement (the same seeds for the
    three), ``resamples`` times from ``seed``; ``method`` percentile, or ``bca`` (bias-corrected
    and accelerated, scipy's ``bootstrap``: a ratio's percentile interval is too narrow with few
    seeds). 0: no better than random; 1: as good as a perfect map. NaN where the oracle gains
    nothing over random."""
    arm, random, oracle = (np.asarray(a, dtype=float) for a in (arm, random, oracle))
    point = float(_share(arm, random, oracle))
    if method == "bca":
        if math.isnan(point):
            return point, math.nan, math.nan
        result = scipy_stats.bootstrap(
            (arm, random, oracle), _share, paired=True, vectorized=True, n_resamples=resamples, method="BCa", random_state=seed, confidence_level=0.95
        )
        return point, float(result.confidence_interval.low), float(result.confidence_interval.high)
    picks = np.random.default_rng(seed).integers(0, len(arm), size=(resamples, len(arm)))
    draws = _share(arm[picks], random[picks], oracle[picks])
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return point, math.nan, math.nan
    low, high = np.percentile(draws, [2.5, 97.5])
    return point, float(low), float(high)


def gain_table(runs: Sequence[Run], keys: Sequence[str], study: Study, metric: str | None = None) -> pd.DataFrame:
    """G per arm of the family and the controls (every arm but the two references), over the seeds that ran the
    arm, the oracle and random removal: G, its bootstrap interval and the three means."""
    if study.gain_share is None:
        return pd.DataFrame()
    metric = metric or study.primary
    sign = 1.0 if higher_is_better(metric) else -1.0
    by_seed = {
        name: {r.seed: sign * metric_of(r, metric) for r in runs if r.metrics and matches(r, selector)}
        for name, selector in (("oracle", study.gain_share.oracle), ("random", study.gain_share.random))
    }
    arms: dict[str, dict[int, float]] = {}
    # the controls' references too (the object prior, a map from a randomised model): their G says
    # how much of a map's gain a control already has; no reduction is the reference line below
    selectors = [*(arm for part in study.family for arm in part.arms), *(a for part in study.controls for a in (*part.arms, part.against))]
    for run in runs:
        if (
            run.metrics
            and label(run, keys) != "no reduction"
            and any(matches(run, selector) for selector in selectors)
            and not any(matches(run, s) for s in (study.gain_share.oracle, study.gain_share.random))
        ):
            arms.setdefault(label(run, keys), {})[run.seed] = sign * metric_of(run, metric)
    # the reference line: what not reducing at all gets on the same scale
    plain = {r.seed: sign * metric_of(r, metric) for r in runs if r.metrics and not r.reduced and label(r, keys) == "no reduction"}
    if plain:
        arms = {"no reduction (reference line)": plain, **arms}
    interval = "95% BCa bootstrap interval" if study.g_interval == "bca" else "95% bootstrap interval"
    rows = []
    for name, values in arms.items():
        seeds = sorted(s for s in values if s in by_seed["oracle"] and s in by_seed["random"] and not math.isnan(values[s]))
        if len(seeds) < 2:
            continue
        arm, random, oracle = (np.array([source[s] for s in seeds]) for source in (values, by_seed["random"], by_seed["oracle"]))
        g, low, high = gain_share(arm, random, oracle, method=study.g_interval)
        rows.append(
            {
                "arm": name,
                "seeds": len(seeds),
                "G": g,
                interval: f"[{low:+.2f}, {high:+.2f}]",
                "arm mean": sign * arm.mean(),
                "random mean": sign * random.mean(),
                "oracle mean": sign * oracle.mean(),
            }
        )
    return pd.DataFrame(rows)


def verdict(mean: float, p_adjusted: float, tost_adjusted: float, margin: float, better_sign: float, sign_flip_adjusted: float | None = None) -> str:
    """better / worse (the adjusted test rejects "no difference", and so does the adjusted
    sign-flip test where one is given), equivalent (TOST rejects a difference as large as the
    margin), or inconclusive (neither)."""
    equivalent = not math.isnan(tost_adjusted) and tost_adjusted < ALPHA
    if not math.isnan(p_adjusted) and p_adjusted < ALPHA:
        if sign_flip_adjusted is not None and not sign_flip_adjusted < ALPHA:
            return "inconclusive (the t-test alone rejects)"
        word = "better" if better_sign * mean > 0 else "worse"
        return f"{word} (within ±{margin:.2g})" if equivalent else word
    return f"equivalent within ±{margin:.2g}" if equivalent else "inconclusive"


def confirmatory_table(
    runs: Sequence[Run], keys: Sequence[str], study: Study, metric: str | None = None, parts: Sequence[FamilyPart] | None = None
) -> pd.DataFrame:
    """One row per comparison of ``parts`` (default: the family) on ``metric`` (default: the primary): pairs, mean
    difference, its 95% and its simultaneous (Bonferroni over the family) t-intervals, the
    paired t-test's p-value raw and Holm-adjusted, the Holm-adjusted TOST p-value and the verdict."""
    metric = metric or study.primary
    rows: list[dict[str, Any]] = []
    for part in study.family if parts is None else parts:
        for name, arm, reference in paired_differences(runs, keys, part, metric):
            diff = arm - reference
            n = len(diff)
            margin = study.margin_for(reference, metric)
            rows.append(
                {
                    "arm": name,
                    "against": selector_label(part.against) + (f" (same {', '.join(m.removeprefix('reduction.') for m in part.match)})" if part.match else ""),
                    "pairs": n,
                    "mean": float(diff.mean()) if n else math.nan,
                    "se": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                    "p": float(scipy_stats.ttest_rel(arm, reference).pvalue) if n > 1 and diff.std() > 0 else math.nan,
                    "margin": margin,
                    "tost": tost_p(arm, reference, margin),
                    "sign-flip p": sign_flip_p(arm, reference) if study.sign_flip else math.nan,
                    "differences": diff,
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    m = int(table["p"].notna().sum())
    table["p (Holm)"] = holm(table["p"])
    table["TOST p (Holm)"] = holm(table["tost"])
    sign = 1.0 if higher_is_better(metric) else -1.0
    table["95% interval"] = [_interval(r.mean, r.se, r.pairs, 0.975) for r in table.itertuples()]
    table[f"simultaneous interval (m = {m})"] = [_interval(r.mean, r.se, r.pairs, 1 - ALPHA / (2 * max(m, 1))) for r in table.itertuples()]
    table["detectable (80% power)"] = [detectable_difference(d, m) for d in table["differences"]]
    table["sign-flip p (Holm)"] = holm(table["sign-flip p"])
    flips = table["sign-flip p (Holm)"] if study.sign_flip else [None] * len(table)
    table["verdict"] = [
        verdict(mean, p, t, margin, sign, flip)
        for mean, p, t, margin, flip in zip(table["mean"], table["p (Holm)"], table["TOST p (Holm)"], table["margin"], flips)
    ]
    return table.drop(columns="differences")


def _interval(mean: float, se: float, n: int, quantile: float) -> str:
    if math.isnan(se):
        return "—" if math.isnan(mean) else f"{mean:+.4f}"
    half = scipy_stats.t.ppf(quantile, n - 1) * se
    return f"[{mean - half:+.4f}, {mean + half:+.4f}]"


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a report prints (the raw p-value and standard error stay in the data; the
    sign-flip test's where the study asks for it)."""
    out = table.rename(columns={"mean": "mean difference"})
    interval = next(c for c in out.columns if c.startswith("simultaneous"))
    flips = ["sign-flip p (Holm)"] if out["sign-flip p"].notna().any() else []
    return out[
        [
            "arm",
            "against",
            "pairs",
            "mean difference",
            "95% interval",
            interval,
            "p",
            "p (Holm)",
            *flips,
            "margin",
            "TOST p (Holm)",
            "detectable (80% power)",
            "verdict",
        ]
    ]

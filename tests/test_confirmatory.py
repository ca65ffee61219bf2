"""The confirmatory statistics of a study's report: Holm's adjustment, TOST, the verdicts, the
convergence warning, and a report rendered from sweep_summary.csv files alone."""

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from src.sweep_report.confirmatory import (
    FamilyPart,
    GainShare,
    Study,
    confirmatory_table,
    detectable_difference,
    gain_share,
    gain_table,
    holm,
    label,
    matches,
    selector_label,
    sign_flip_p,
    study_of,
    tost_p,
)
from src.sweep_report.markdown import checkpoint_selection, removal_measures_section
from src.sweep_report.runs import Run
from src.sweep_report.stats import still_improving
from tests.helpers.cli import run_cli
from tests.helpers.compose import compose_config


def run(seed: int, method: str | None, value: float, best_epoch: int | None = None, epochs: pd.DataFrame | None = None) -> Run:
    reduction = {"_target_": "SaliencyReduction", "rounds": 0 if method is None else 7, "epochs_per_round": 10, "method": method or "prediction"}
    config = OmegaConf.create(
        {
            "seed": seed,
            "task_name": "toy",
            "trainer": {"max_epochs": 100},
            "reduction": reduction,
            "model": {"_target_": "src.models.segmentation.SegmentationModule"},
        }
    )
    overrides = {"seed": str(seed), **({"reduction.rounds": "0"} if method is None else {"reduction.method": method})}
    return Run(Path(f"run{seed}{method}"), config, overrides, metrics={"test/miou": value}, best_epoch=best_epoch, epochs=epochs)


def test_holm_equals_statsmodels_and_the_step_down_by_hand() -> None:
    p = [0.01, 0.04, 0.03, math.nan, 0.2]
    adjusted = holm(p)
    expected = multipletests([0.01, 0.04, 0.03, 0.2], method="holm")[1]
    assert np.allclose(adjusted[[0, 1, 2, 4]], expected) and math.isnan(adjusted[3])
    # sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1, kept monotone: 0.04, 0.09, 0.09, 0.2
    assert np.allclose(adjusted[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.2])


def test_tost_equals_statsmodels_and_two_one_sided_scipy_tests() -> None:
    arm = np.array([0.801, 0.812, 0.795, 0.808, 0.799, 0.803])
    reference = np.array([0.800, 0.806, 0.799, 0.801, 0.802, 0.797])
    margin = 0.01
    p = tost_p(arm, reference, margin)
    assert p == pytest.approx(ttost_paired(arm, reference, -margin, margin)[0], rel=1e-12)
    diff = arm - reference
    lower = stats.ttest_1samp(diff, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(diff, margin, alternative="less").pvalue
    assert p == pytest.approx(max(lower, upper), rel=1e-9)


def test_the_family_is_tested_together_with_verdicts() -> None:
    rng = np.random.default_rng(0)
    base = 0.7 + rng.normal(0, 0.02, 8)
    arms = {
        "oracle": base + 0.05 + rng.normal(0, 0.005, 8),  # better
        "prediction": base + rng.normal(0, 0.001, 8),  # equivalent within 0.01
        "gradcam": base + rng.normal(0, 0.05, 8),  # too noisy to say
        "random": base - 0.05 + rng.normal(0, 0.005, 8),  # worse
    }
    runs = [run(s, None, float(base[s])) for s in range(8)]
    runs += [run(s, method, float(values[s])) for method, values in arms.items() for s in range(8)]
    study = Study("toy", "test/miou", 0.01, [FamilyPart({"reduction.rounds": "0"}, [{"reduction.method": m} for m in arms])])
    table = confirmatory_table(runs, ["reduction.method", "reduction.rounds"], study).set_index("arm")
    p = [stats.ttest_rel(arms[m], base).pvalue for m in arms]
    assert np.allclose(table["p"].to_numpy(), p, rtol=1e-10)
    assert np.allclose(table["p (Holm)"].to_numpy(), multipletests(p, method="holm")[1], rtol=1e-10)
    tost = [ttost_paired(arms[m], base, -0.01, 0.01)[0] for m in arms]
    assert np.allclose(table["TOST p (Holm)"].to_numpy(), multipletests(tost, method="holm")[1], rtol=1e-10)
    assert table["pairs"].tolist() == [8] * 4 and table.loc["method=oracle", "mean"] == pytest.approx(float(np.mean(arms["oracle"] - base)))
    verdicts = table["verdict"].to_dict()
    assert verdicts == {
        "method=oracle": "better",
        "method=prediction": "equivalent within ±0.01",
        "method=gradcam": "inconclusive",
        "method=random": "worse",
    }


def test_the_convergence_warning_fires_on_a_rising_curve_and_not_on_a_plateau() -> None:
    epochs = np.arange(100)
    rising = pd.DataFrame({"epoch": epochs, "val/loss": 1.0 / (1 + 0.05 * epochs)})  # still falling at the last epoch
    plateau = pd.DataFrame({"epoch": epochs, "val/loss": np.maximum(1.0 - epochs / 40, 0.0) + 0.1 + 0.001 * np.sin(epochs) ** 2 + 0.0005 * (epochs > 40)})
    assert still_improving([run(0, None, 0.5, epochs=rising)]) == [(0, 99, 100)]
    assert still_improving([run(0, None, 0.5, epochs=plateau)]) == []
    # from a CSV (no curve): the best checkpoint's epoch
    assert still_improving([run(1, None, 0.5, best_epoch=95), run(2, None, 0.5, best_epoch=60)]) == [(1, 95, 100)]
    assert still_improving([run(3, "oracle", 0.5, best_epoch=99)]) == []  # baselines only


@pytest.mark.slow
def test_a_report_renders_from_summary_csvs_alone(tmp_path: Path) -> None:
    # two summaries of one study (an arm run later), with machine paths in them; no run dir exists
    columns = ["job", "overrides", "status", "error", "test/miou", "test/acc", "val/loss", "best_epoch", "wall_seconds", "run_dir"]
    rng = np.random.default_rng(1)
    first, later = [], []
    for seed in range(4):
        for arm, shift in (
            ("reduction.rounds=0", 0.0),
            ("reduction.method=random reduction.fill=blur", -0.002),
            ("reduction.method=prediction reduction.fill=blur", 0.0),
        ):
            value = 0.99 + shift + rng.normal(0, 0.001)
            first.append(
                [
                    len(first),
                    f"seed={seed} {arm} experiment=reduction_controls_eliret paths.data_dir=/tmp/secret/data",
                    "ok",
                    "",
                    value,
                    0.99,
                    0.1,
                    97 if "rounds=0" in arm else 80,
                    50,
                    f"/tmp/secret/{len(first)}",
                ]
            )
        later.append(
            [
                seed,
                f"seed={seed} reduction.method=oracle reduction.fill=impute experiment=reduction_controls_eliret",
                "ok",
                "",
                0.995,
                0.99,
                0.1,
                80,
                50,
                f"/tmp/secret/o{seed}",
            ]
        )
    for name, rows in (("sweep_summary.csv", first), ("oracle.csv", later)):
        with open(tmp_path / name, "w", newline="") as handle:
            csv.writer(handle).writerows([columns, *rows])
    result = run_cli("src.report", str(tmp_path / "sweep_summary.csv"), str(tmp_path / "oracle.csv"), "--out", str(tmp_path / "report"), project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert text.startswith("# Study report: `reduction_controls_eliret`")
    assert "/tmp/secret" not in text and str(tmp_path) not in text
    confirmatory = text.split("## Confirmatory analysis")[1].split("\n## ")[0]
    assert "**`test/miou`**" in confirmatory
    rows = [line for line in confirmatory.splitlines() if line.startswith("| method=")]
    # prediction/blur vs random/blur, oracle/impute vs random (no impute random: unpaired, left out) and vs no reduction
    assert [r.split("|")[1].strip() for r in rows] == ["method=prediction, fill=blur", "method=oracle, fill=impute"]
    assert "best at epoch 97, counted from 0, of 98 epochs" in text and "still improving" in text
    assert "exploratory, unadjusted" in text.lower()


def test_the_gain_share_and_its_bootstrap_interval_equal_a_hand_computation() -> None:
    arm = np.array([0.50, 0.56, 0.53, 0.60])
    random = np.array([0.40, 0.42, 0.41, 0.45])
    oracle = np.array([0.70, 0.72, 0.69, 0.75])
    g, low, high = gain_share(arm, random, oracle, resamples=2000, seed=4)
    # by hand: (0.5475 - 0.42) / (0.715 - 0.42)
    assert g == pytest.approx((0.5475 - 0.42) / (0.715 - 0.42), rel=1e-12)
    picks = np.random.default_rng(4).integers(0, 4, size=(2000, 4))
    draws = [(arm[i].mean() - random[i].mean()) / (oracle[i].mean() - random[i].mean()) for i in picks]
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), rel=1e-12)
    assert low <= g <= high
    # the references themselves: 1 for the oracle, 0 for random, with no spread
    assert gain_share(oracle, random, oracle) == pytest.approx((1.0, 1.0, 1.0))
    assert gain_share(random, random, oracle) == pytest.approx((0.0, 0.0, 0.0))


def test_the_gain_table_pairs_arm_random_and_oracle_by_seed_on_the_higher_is_better_scale() -> None:
    values = {"oracle": [0.7, 0.8, 0.75], "random": [0.4, 0.5, 0.45], "prediction": [0.55, 0.65, 0.6]}
    runs = [run(seed, method, v) for method, vs in values.items() for seed, v in enumerate(vs)]
    gain = GainShare(oracle={"reduction.method": "oracle"}, random={"reduction.method": "random"})
    study = Study("toy", "test/miou", 0.01, [FamilyPart({"reduction.rounds": "0"}, [{"reduction.method": m} for m in values])], gain_share=gain)
    table = gain_table(runs, ["reduction.method"], study)
    assert table["arm"].tolist() == ["method=prediction"] and table["seeds"].tolist() == [3]
    assert table["G"].iloc[0] == pytest.approx(0.5)


def test_a_relative_margin_is_a_share_of_the_references_error_and_power_is_stated() -> None:
    base = np.array([0.9950, 0.9962, 0.9958, 0.9965])
    arm = base + np.array([0.0003, -0.0002, 0.0001, 0.0002])
    runs = [run(seed, None, v) for seed, v in enumerate(base)] + [run(seed, "oracle", v) for seed, v in enumerate(arm)]
    family = [FamilyPart({"reduction.rounds": "0"}, [{"reduction.method": "oracle"}])]
    relative = confirmatory_table(runs, ["reduction.method"], Study("toy", "test/miou", 0.01, family, relative_margin=0.2))
    # 20% of the baseline's error 1 - 0.995875
    assert relative["margin"].iloc[0] == pytest.approx(0.2 * (1 - base.mean()))
    assert confirmatory_table(runs, ["reduction.method"], Study("toy", "test/miou", 0.01, family))["margin"].iloc[0] == 0.01
    # the detectable difference: statsmodels' effect size at alpha/m, power 0.8, times the spread
    diff = arm - base
    effect = TTestPower().solve_power(nobs=4, alpha=0.05, power=0.8, alternative="two-sided")
    assert relative["detectable (80% power)"].iloc[0] == pytest.approx(effect * diff.std(ddof=1))
    assert detectable_difference(diff, tests=2) > detectable_difference(diff, tests=1)
    # a loss's margin is a share of its mean
    assert Study("toy", "val/loss", 0.01, family, relative_margin=0.1).margin_for(np.array([0.2, 0.4]), "val/loss") == pytest.approx(0.03)


def test_arms_beside_the_baseline_keep_their_own_names_and_unset_selects_the_plain_baseline() -> None:
    plain = run(0, None, 0.5)
    swapped = run(0, None, 0.6)
    swapped.overrides["background_swap"] = "mixed_rand"
    keys = ["reduction.rounds", "background_swap"]
    assert label(plain, keys) == "no reduction" and label(swapped, keys) == "no reduction, background_swap=mixed_rand"
    baseline = {"reduction.rounds": "0", "background_swap": "unset"}
    assert matches(plain, baseline) and not matches(swapped, baseline)
    assert selector_label(baseline) == "no reduction"
    family = [FamilyPart(baseline, [{"background_swap": "mixed_rand"}])]
    runs = [plain, swapped, run(1, None, 0.4), run(1, None, 0.55)]
    runs[3].overrides["background_swap"] = "mixed_rand"
    table = confirmatory_table(runs, keys, Study("toy", "test/miou", 0.01, family))
    assert table["arm"].tolist() == ["no reduction, background_swap=mixed_rand"] and table["mean"].iloc[0] == pytest.approx(0.125)


def test_the_report_summarises_the_model_free_measures_per_setting_and_round() -> None:
    runs = []
    for seed, (iou, cue) in enumerate([(0.2, 0.9), (0.4, 0.8)]):
        reduced = run(seed, "random", 0.5)
        reduced.rounds = pd.DataFrame({"round": [1], "kept_fraction": [0.3], "oracle_keep_iou": [iou], "cue_share": [cue]})
        runs.append(reduced)
    runs.append(run(0, None, 0.4))  # no reduction: no rounds
    lines = removal_measures_section(runs, ["reduction.method"])
    table = next(line for line in "\n".join(lines).splitlines() if line.startswith("| method=random"))
    # mean ± sample std over the two seeds: 0.3 ± 0.14 and 0.85 ± 0.071
    assert table == "| method=random | 1 | 2 | 0.3 ± 0.14 | 0.85 ± 0.071 |"
    assert removal_measures_section([run(0, None, 0.4)], ["reduction.method"]) == []


def test_a_baseline_trained_with_reduction_none_in_another_stage_is_the_no_reduction_arm() -> None:
    config = OmegaConf.create(
        {"seed": 0, "task_name": "toy", "reduction": {}, "model": {"_target_": "src.models.segmentation.SegmentationModule"}}
    )  # reduction=none
    baseline = Run(Path("baseline"), config, {"seed": "0", "experiment": "stage_one"}, metrics={"test/miou": 0.4})
    selector = {"reduction.rounds": "0", "background_swap": "unset"}
    assert matches(baseline, selector) and label(baseline, ["experiment", "reduction.method"]) == "no reduction"
    assert not matches(run(0, "oracle", 0.6), selector)


def test_the_report_names_the_validation_split_that_chose_the_checkpoints() -> None:
    plain, balanced, cued = run(0, None, 0.5), run(1, None, 0.5), run(2, None, 0.5)
    OmegaConf.update(balanced.config, "data", {"balanced_val": True})
    OmegaConf.update(cued.config, "data", {"balanced_val": False})
    assert checkpoint_selection([plain]) == "the checkpoint with the best validation `val/loss` (min)"
    assert checkpoint_selection([balanced, balanced]).endswith(" on the balanced validation split (half cue-aligned, half reversed)")
    assert checkpoint_selection([cued]).endswith(" on a validation split cued like the training set")
    assert "in some runs" in checkpoint_selection([balanced, cued])


def test_the_sign_flip_p_equals_the_count_over_every_sign_pattern() -> None:
    arm = np.array([0.61, 0.72, 0.55, 0.80, 0.66, 0.70])
    reference = np.array([0.51, 0.52, 0.60, 0.50, 0.51, 0.45])
    diff = arm - reference
    patterns = np.array(list(itertools.product([1.0, -1.0], repeat=len(diff))))
    by_hand = np.mean(np.abs((patterns * diff).mean(1)) >= abs(diff.mean()) - 1e-12)
    assert sign_flip_p(arm, reference) == pytest.approx(by_hand)
    # n pairs all one way: the smallest two-sided p, 2 / 2^n (1/2048 with 12 seeds)
    assert sign_flip_p(np.arange(12) + 1.0, np.zeros(12)) == pytest.approx(1 / 2048)


def test_a_verdict_needs_the_sign_flip_test_where_the_study_asks_for_it() -> None:
    base = [0.50, 0.52, 0.49, 0.51]
    arm = [0.60, 0.63, 0.58, 0.62]  # the t-test rejects; 4 pairs give a sign-flip p of 2/16 at best
    runs = [run(seed, None, v) for seed, v in enumerate(base)] + [run(seed, "oracle", v) for seed, v in enumerate(arm)]
    family = [FamilyPart({"reduction.rounds": "0"}, [{"reduction.method": "oracle"}])]
    plain = confirmatory_table(runs, ["reduction.method"], Study("toy", "test/miou", 0.01, family))
    flipped = confirmatory_table(runs, ["reduction.method"], Study("toy", "test/miou", 0.01, family, sign_flip=True))
    assert plain["verdict"].iloc[0] == "better" and plain["p (Holm)"].iloc[0] < 0.05
    assert flipped["sign-flip p (Holm)"].iloc[0] == pytest.approx(2 / 16)
    assert flipped["verdict"].iloc[0] == "inconclusive (the t-test alone rejects)"


def test_the_bca_interval_of_g_equals_the_formula_on_scipys_resamples() -> None:
    arm = np.array([0.50, 0.56, 0.53, 0.60, 0.47, 0.58, 0.52, 0.55])
    random = np.array([0.40, 0.42, 0.41, 0.45, 0.39, 0.44, 0.40, 0.43])
    oracle = np.array([0.70, 0.72, 0.69, 0.75, 0.68, 0.74, 0.71, 0.73])
    g, low, high = gain_share(arm, random, oracle, resamples=3000, seed=2, method="bca")

    def share(a, r, o, axis=-1):
        return (a.mean(axis) - r.mean(axis)) / (o.mean(axis) - r.mean(axis))

    result = stats.bootstrap((arm, random, oracle), share, paired=True, vectorized=True, n_resamples=3000, method="percentile", random_state=2)
    draws = result.bootstrap_distribution
    z0 = stats.norm.ppf((np.mean(draws < g) + np.mean(draws <= g)) / 2)  # resamples equal to the point count half
    keep = ~np.eye(len(arm), dtype=bool)
    jackknife = np.array([share(arm[k], random[k], oracle[k]) for k in keep])
    spread = jackknife.mean() - jackknife
    acceleration = (spread**3).sum() / (6 * ((spread**2).sum()) ** 1.5)
    z = stats.norm.ppf([0.025, 0.975])
    levels = stats.norm.cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, 100 * levels)), rel=1e-9)
    assert low < g < high


def test_the_gain_table_prints_no_reductions_g_as_a_reference_line() -> None:
    values = {"oracle": [0.7, 0.8, 0.75], "random": [0.4, 0.5, 0.45], "prediction": [0.55, 0.65, 0.6]}
    runs = [run(seed, method, v) for method, vs in values.items() for seed, v in enumerate(vs)]
    runs += [run(seed, None, v) for seed, v in enumerate([0.46, 0.56, 0.51])]
    gain = GainShare(oracle={"reduction.method": "oracle"}, random={"reduction.method": "random"})
    study = Study("toy", "test/miou", 0.01, [FamilyPart({"reduction.rounds": "0"}, [{"reduction.method": m} for m in values])], gain_share=gain)
    table = gain_table(runs, ["reduction.method"], study)
    assert table["arm"].tolist() == ["no reduction (reference line)", "method=prediction"]
    assert table["G"].iloc[0] == pytest.approx(0.2)


def test_the_controls_are_adjusted_apart_from_the_family_and_get_their_g() -> None:
    rng = np.random.default_rng(1)
    base = 0.5 + rng.normal(0, 0.02, 6)
    values = {"oracle": base + 0.3, "random": base, "gradcam": base + 0.1 + rng.normal(0, 0.01, 6), "object_prior": base + 0.09 + rng.normal(0, 0.01, 6)}
    runs = [run(seed, method, float(v)) for method, vs in values.items() for seed, v in enumerate(vs)]
    family = [FamilyPart({"reduction.method": "random"}, [{"reduction.method": "gradcam"}, {"reduction.method": "oracle"}])]
    controls = [FamilyPart({"reduction.method": "object_prior"}, [{"reduction.method": "gradcam"}])]
    gain = GainShare(oracle={"reduction.method": "oracle"}, random={"reduction.method": "random"})
    study = Study("toy", "test/miou", 0.01, family, gain_share=gain, controls=controls)
    main = confirmatory_table(runs, ["reduction.method"], study)
    secondary = confirmatory_table(runs, ["reduction.method"], study, parts=study.controls)
    assert len(main) == 2 and len(secondary) == 1
    # a family of one: Holm leaves its p as it is, whatever the primary family holds
    assert secondary["p (Holm)"].iloc[0] == pytest.approx(stats.ttest_rel(values["gradcam"], values["object_prior"]).pvalue)
    assert secondary["mean"].iloc[0] == pytest.approx(float(np.mean(values["gradcam"] - values["object_prior"])))
    # the controls' arms get G as the family's do
    table = gain_table(runs, ["reduction.method"], study)
    g = table.set_index("arm")["G"]
    assert set(g.index) == {"method=gradcam", "method=object_prior"}
    assert g["method=object_prior"] == pytest.approx(float((values["object_prior"].mean() - base.mean()) / 0.3))


def test_a_selector_matches_a_boolean_written_as_yaml_writes_it() -> None:
    config = OmegaConf.create(
        {"seed": 0, "task_name": "toy", "reduction": {"_target_": "SaliencyReduction", "rounds": 1, "method": "gradcam", "randomised_model": True}}
    )
    randomised = Run(Path("r"), config, {"seed": "0", "reduction.randomised_model": "true"}, metrics={"test/miou": 0.5})
    assert matches(randomised, {"reduction.randomised_model": "true"}) and matches(randomised, {"reduction.randomised_model": "True"})
    assert not matches(randomised, {"reduction.randomised_model": "false"}) and not matches(randomised, {"reduction.randomised_model": "unset"})


@pytest.mark.parametrize("place", ["far", "near", "patch"])
def test_each_placement_preset_draws_its_own_set_per_seed_and_names_its_families(place: str, tmp_path: Path) -> None:

    baselines = compose_config("train", [f"experiment=reduction_benchmark_{place}_baselines", "seed=5"], tmp_path)
    arms = compose_config("train", [f"experiment=reduction_benchmark_{place}", "seed=5"], tmp_path)
    for cfg in (baselines, arms):
        assert (cfg.data.cue_place, cfg.data.data_seed, cfg.data.n_test) == (place, 5, 1000)
        assert cfg.data.data_dir.endswith(f"shortcut_benchmark_{place}") and cfg.task_name == f"reduction_benchmark_{place}"
    # stage 2 reads the same seed's baseline, from the placement's own stage 1
    assert arms.reduction.maps_from.endswith(f"reduction_benchmark_{place}/baselines/seed_5")
    study = study_of([Run(Path("x"), arms, {}, metrics={})])
    assert study is not None and study.primary == "test_reversed/miou_object" and study.sign_flip and study.g_interval == "bca"
    comparisons = sum(len(part.arms) for part in study.family)
    # the primary: each map against random and against no reduction (+ the oracle); a secondary
    # with 8 seeds keeps a family whose smallest sign-flip p survives Holm (6 x 2/256 < 0.05)
    assert comparisons == (11 if place == "far" else 6)
    assert comparisons * 2 / 2 ** (12 if place == "far" else 8) < 0.05
    assert {"object_prior"} <= {part.against.get("reduction.method") for part in study.controls}

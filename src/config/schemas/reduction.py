"""The saliency reduction's settings and their defaults (conf/reduction/saliency.yaml selects this
and wires in the run's seed, length and output dir); the ``SaliencyReduction`` callback's
constructor, argument for argument."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

# The closed choices, here once: the reduction's code and the check before a run (check_ranges)
# read them. Attribution methods that differentiate the model (src/saliency/attribution.py):
GRADIENT_METHODS = ("gradient", "integrated_gradients", "smoothgrad", "gradcam")
# controls: relevance that knows nothing of the task, at the same kept fractions (ROAR's random
# baseline); random_smooth has Grad-CAM-like blobs, to tell a map's content from its blurriness
RANDOM_METHODS = ("random", "random_smooth")
# a positive control, not a method: relevance from the ground truth (what a perfect map would keep)
ORACLE = "oracle"
# a label-free object prior: the model's own predicted foreground first, then the background by
# its distance to it; a map no better than this keeps "near the object", not what the model reads
OBJECT_PRIOR = "object_prior"
# the upper bound where the cue lies near the object: the oracle's ranking with every pixel of the
# known cue ranked last (a data set that knows its cue: data=shortcut)
CUE_ORACLE = "cue_oracle"
METHODS = ("prediction", *GRADIENT_METHODS, *RANDOM_METHODS, ORACLE, CUE_ORACLE, OBJECT_PRIOR)
FILLS = ("zero", "mean", "blur", "impute")
# which pixels a round keeps: the most relevant (the original study, KAR: Keep And Retrain) or the
# least (ROAR's direction: RemOve And Retrain); ROAD (RemOve And Debias) is the impute fill
KEEPS = ("most", "least")
# what the training targets make of removed pixels: their label (the original study) or the ignore index
REMOVED = ("label", "ignore")
CHOICES = {"reduction.method": METHODS, "reduction.fill": FILLS, "reduction.keep": KEEPS, "reduction.removed": REMOVED}


@dataclass
class SaliencyReductionSchema:
    _target_: str = "src.reduction.callback.SaliencyReduction"
    rounds: int = 3  # the original study: 7
    epochs_per_round: int = MISSING  # the YAML: trainer.max_epochs // rounds, >= 1
    percentile: float = 90.0  # each round keeps ceil(p/100 * n) of the n pixels still present
    cumulative: bool = True  # removed pixels stay removed; relevance on the reduced image
    fill: str = "zero"  # zero | mean | blur | impute (ROAD's noisy linear imputation: no edge at the mask's border)
    method: str = "prediction"  # prediction | gradient | integrated_gradients | smoothgrad | gradcam | random | random_smooth | oracle | cue_oracle | object_prior (controls)
    # the sanity control of Adebayo et al. 2018: the method's maps from the model with every
    # layer's weights re-drawn (its own initialisation, seeded by (seed, round)), not the trained ones
    randomised_model: bool = False
    keep: str = "most"  # most | least (ROAR's direction: keep the least relevant pixels)
    background_class: int = 0
    reinit: bool = False  # keep training the same weights across rounds (the original study)
    batch_size: int = 64  # images per relevance batch
    examples: int = 6  # training images in each round's examples.png
    ig_steps: int = 16  # integrated_gradients
    smoothgrad_samples: int = 8  # smoothgrad
    smoothgrad_stdev: float = 0.1
    seed: int = MISSING  # random / random_smooth relevance and the impute noise: drawn from (seed, round, image)
    smooth_scale: float = 0.1  # random_smooth: sigma as a fraction of the image's shorter side
    impute_noise: float = 0.01  # impute: noise std (images in [0, 1])
    oracle_margin: int = 2  # oracle (a positive control from the ground truth): objects dilated by this many pixels rank first, the rest by distance
    removed: str = "label"  # label (the original study: removed pixels keep their label) | ignore (no loss on removed pixels)
    output_dir: str = MISSING
    maps_from: str | None = None  # a checkpoint or a finished run dir: the first reduction uses its model's maps, before training (ROAR's one round)


@dataclass
class BackgroundSwapSchema:
    """Background randomisation (Mixed-Rand, Xiao et al. 2020): a baseline beside the reduction."""

    _target_: str = "src.reduction.background_swap.BackgroundRandomisation"
    share: float = 1.0  # the fraction of training images that take another image's background
    seed: int = MISSING  # the YAML: the run's seed (which images, which donors, the fill's noise)
    impute_noise: float = 0.01  # the imputation that empties a donor's object
    background_class: int = 0

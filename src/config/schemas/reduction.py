"""The saliency reduction's settings and their defaults (conf/reduction/saliency.yaml selects this
and wires in the run's seed, length and output dir); the ``SaliencyReduction`` callback's
constructor, argument for argument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from omegaconf import MISSING

from src.config.schemas.constraints import BatchSize, Range

# The closed choices, here once, as the types of their fields (``Annotated[str, Literal[...]]``:
# OmegaConf 2.3 stores a str and does not take a bare Literal; check_ranges reads the Literal).
# Attribution methods that differentiate the model (src/saliency/attribution.py):
GradientMethod = Literal["gradient", "integrated_gradients", "smoothgrad", "gradcam"]
# controls: relevance that knows nothing of the task, at the same kept fractions (ROAR's random
# baseline); random_smooth has Grad-CAM-like blobs, to tell a map's content from its blurriness
RandomMethod = Literal["random", "random_smooth"]
GRADIENT_METHODS: tuple[str, ...] = get_args(GradientMethod)
RANDOM_METHODS: tuple[str, ...] = get_args(RandomMethod)
# a positive control, not a method: relevance from the ground truth (what a perfect map would keep)
ORACLE = "oracle"
# a label-free object prior: the model's own predicted foreground first, then the background by
# its distance to it; a map no better than this keeps "near the object", not what the model reads
OBJECT_PRIOR = "object_prior"
# the upper bound where the cue lies near the object: the oracle's ranking with every pixel of the
# known cue ranked last (a data set that knows its cue: data=shortcut)
CUE_ORACLE = "cue_oracle"
Method = Literal["prediction", GradientMethod, RandomMethod, "oracle", "cue_oracle", "object_prior"]
METHODS: tuple[str, ...] = get_args(Method)
# ROAD's noisy linear imputation (impute) leaves no edge at the mask's border
Fill = Literal["zero", "mean", "blur", "impute"]
FILLS: tuple[str, ...] = get_args(Fill)
# which pixels a round keeps: the most relevant (the original study, KAR: Keep And Retrain) or the
# least (ROAR's direction: RemOve And Retrain); ROAD (RemOve And Debias) is the impute fill
Keep = Literal["most", "least"]
KEEPS: tuple[str, ...] = get_args(Keep)
# what the training targets make of removed pixels: their label (the original study) or the ignore index
Removed = Literal["label", "ignore"]


@dataclass
class SaliencyReductionSchema:
    """The saliency reduction's settings (``src.reduction.callback.SaliencyReduction``'s arguments).

    Args:
    rounds: number of train-then-reduce rounds (the original study: 7).
    epochs_per_round: epochs trained between reductions (config default: trainer.max_epochs //
        rounds); the fit lasts rounds x epochs_per_round epochs.
    percentile: p in (0, 100]: each round keeps ceil(p/100 * n) of the n pixels still present
        in an image (ties: first pixel in row-major order wins); cumulative rounds keep (p/100)^r.
    cumulative: a removed pixel stays removed and relevance is computed on the reduced image;
        False recomputes on the original images and replaces the mask each round.
    fill: what removed pixels become: zero (the original study) | mean | blur | impute (ROAD's noisy
        linear imputation: no edge at the mask's border).
    method: prediction (the original study) | gradient | integrated_gradients | smoothgrad | gradcam, or
        a control that knows nothing of the task: random (uniform per pixel) | random_smooth
        (a Gaussian-smoothed random field, blob-shaped like Grad-CAM's maps).
    keep: most (the original study) | least: keep the least relevant pixels (ROAR's direction; a map
        that carries task information must hurt more than random there).
    seed: the run's seed: the random controls', the impute noise's and smoothgrad's draws come
        from (seed, round, image), and reinit's weights from (seed, round).
    smooth_scale: random_smooth's sigma as a fraction of the image's shorter side.
    impute_noise: the impute fill's noise (standard deviation, images in [0, 1]).
    oracle_margin: method=oracle (a positive control: relevance from the ground truth) ranks
        every object pixel, dilated by this many pixels, first, then the rest by distance to
        the object. Every round also logs the IoU of its keep-masks with the oracle's
        (``oracle_keep_iou``) and, on a set that knows its cue, the share of the cue left
        (``cue_share``): model-free measures of what the map removed.
    removed: what the loss makes of removed pixels: label (the original study: they keep their label,
        so the model learns that fill means background) | ignore (they become the model's
        ``ignore_index`` in the training targets: no loss, no training metric; validation and
        test are unchanged).
    background_class: the class whose probability is not relevance (multi-class outputs).
    maps_from: a checkpoint, or a finished run's dir (its best checkpoint): the first reduction
        is made before any training, with that checkpoint's model (a trained baseline), and the
        run then trains from its own fresh weights on the reduced set. ROAR's one-round protocol:
        with ``rounds=1`` every arm that starts from the same baseline differs only in its maps.
        None: the first reduction follows round 1 of this run.
    reinit: re-initialise the weights (and optimizer state) at the start of every new round (at
        its first epoch's start, so the previous round's checkpoints hold its trained weights),
        drawn from (seed, round): two seeds never share a round's initial weights.
    batch_size: images per relevance batch.
    examples: training images shown in each round's examples.png.
    output_dir: where reduction/ outputs go (rank 0 writes them).
    ig_steps, smoothgrad_samples, smoothgrad_stdev, randomised_model: see the comments at the
        fields.
    """

    _target_: str = "src.reduction.callback.SaliencyReduction"
    rounds: Annotated[int, Range(lambda v: v >= 0, ">= 0 (0 trains once, without reduction)")] = 3  # the original study: 7
    epochs_per_round: Annotated[int, Range(lambda v: v >= 1, ">= 1")] = MISSING  # the YAML: trainer.max_epochs // rounds, >= 1
    percentile: Annotated[float, Range(lambda v: 0 < v <= 100, "in (0, 100]: the share of pixels kept per round")] = (
        90.0  # each round keeps ceil(p/100 * n) of the n pixels still present
    )
    cumulative: bool = True  # removed pixels stay removed; relevance on the reduced image
    fill: Annotated[str, Fill] = "zero"
    method: Annotated[str, Method] = "prediction"
    # the sanity control of Adebayo et al. 2018: the method's maps from the model with every
    # layer's weights re-drawn (its own initialisation, seeded by (seed, round)), not the trained ones
    randomised_model: bool = False
    keep: Annotated[str, Keep] = "most"
    background_class: int = 0
    reinit: bool = False  # keep training the same weights across rounds (the original study)
    batch_size: BatchSize = 64  # images per relevance batch
    examples: int = 6  # training images in each round's examples.png
    ig_steps: int = 16  # integrated_gradients
    smoothgrad_samples: int = 8  # smoothgrad
    smoothgrad_stdev: float = 0.1
    seed: int = MISSING  # random / random_smooth relevance and the impute noise: drawn from (seed, round, image)
    smooth_scale: Annotated[float, Range(lambda v: 0 < v <= 1, "in (0, 1]: random_smooth's sigma as a fraction of the image side")] = (
        0.1  # random_smooth: sigma as a fraction of the image's shorter side
    )
    impute_noise: Annotated[float, Range(lambda v: v >= 0, ">= 0")] = 0.01  # impute: noise std (images in [0, 1])
    oracle_margin: Annotated[int, Range(lambda v: v >= 0, ">= 0 pixels")] = (
        2  # oracle (a positive control from the ground truth): objects dilated by this many pixels rank first, the rest by distance
    )
    removed: Annotated[str, Removed] = "label"
    output_dir: str = MISSING
    maps_from: str | None = None  # a checkpoint or a finished run dir: the first reduction uses its model's maps, before training (ROAR's one round)


@dataclass
class BackgroundSwapSchema:
    """Background randomisation (Mixed-Rand, Xiao et al. 2020): a baseline beside the reduction."""

    _target_: str = "src.reduction.background_swap.BackgroundRandomisation"
    share: Annotated[float, Range(lambda v: 0 <= v <= 1, "in [0, 1]: the fraction of training images whose background is swapped")] = (
        1.0  # the fraction of training images that take another image's background
    )
    seed: int = MISSING  # the YAML: the run's seed (which images, which donors, the fill's noise)
    impute_noise: float = 0.01  # the imputation that empties a donor's object
    background_class: int = 0

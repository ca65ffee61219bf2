"""The models' settings and their defaults: one dataclass per net and per Lightning module of
conf/model/ (the YAML options only pick the optimizer and scheduler), and the optimizers'. Each is
its class's constructor, argument for argument, less what the data module supplies at build time
(channels, output mode, normalisation: ``src.jobs.builders.build_model``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from omegaconf import MISSING

from src.config.schemas.constraints import LearningRate, Range, WeightDecay

# The closed choices, as the types of their fields (see schemas/reduction.py)
Upsampling = Literal["transpose", "bilinear", "nearest"]  # the U-Net decoder's 2x upsampling
# an early exit's head: global average pooling + linear, or a 3x3 conv + ReLU first
ExitHead = Literal["pool_linear", "conv_pool_linear"]
# every loss by name (src/models/losses.py: which fit each output mode)
Loss = Literal["mse", "bce", "dice", "dice+bce", "ce", "dice+ce", "weighted_ce"]
UPSAMPLINGS: tuple[str, ...] = get_args(Upsampling)
EXIT_HEADS: tuple[str, ...] = get_args(ExitHead)
LOSS_NAMES: tuple[str, ...] = get_args(Loss)


# ---- nets ---------------------------------------------------------------------------------
@dataclass
class UNetSchema:
    _target_: str = "src.models.unet.UNet"
    depth: int = 3  # 2x2 max-poolings (the original study: 3 on 32x32 eliret, 4 on membrane)
    base_width: int = 16  # channels at full resolution (the original study: 64; 16 is plenty for eliret)
    upsampling: Annotated[str, Upsampling] = "transpose"
    batch_norm: bool = True
    dropout: float = 0.0
    dropout_levels: int = 2
    skip: bool = True  # false: the no-skip ablation
    pad_input: bool = False  # true: reflect-pad sides not divisible by 2^depth


@dataclass
class FCNSchema:
    _target_: str = "src.models.fcn.FCN"
    widths: list[int] = field(default_factory=lambda: [20, 40])
    kernel_size: int = 5
    dropout: float = 0.25
    pad_input: bool = False


@dataclass
class EarlyExitCNNSchema:
    _target_: str = "src.models.early_exit_cnn.EarlyExitCNN"
    stages: int = 4
    base_width: int = 16
    exit_stages: list[int] = field(default_factory=lambda: [0, 1, 2, 3])  # one exit per stage; the last is the final exit
    head: Annotated[str, ExitHead] = "pool_linear"
    head_width: int = 32
    batch_norm: bool = True
    dropout: float = 0.0


# any segmentation_models_pytorch architecture takes its own keyword arguments
# (`model.net.decoder_channels=...`), so this net is an open mapping rather than a dataclass
SMP_NET: dict[str, Any] = {
    "_target_": "src.models.smp_net.smp_model",
    "arch": "Unet",
    "encoder_name": "resnet18",
    "encoder_weights": None,  # no download by default; "imagenet" fetches weights from the model hub (needs network)
}


# ---- Lightning modules --------------------------------------------------------------------
@dataclass
class SegmentationModuleSchema:
    _target_: str = "src.models.segmentation.SegmentationModule"
    _recursive_: bool = False
    net: Any = MISSING
    optimizer: Any = MISSING  # the model/optimizer group
    scheduler: Any = None  # the model/scheduler group ({} for none); None: a constant rate
    loss: Annotated[str | None, Loss] = None  # null: the task's default (regression: mse, binary: bce, multiclass: ce)
    monitor: str = "val/loss"
    tta: bool = False  # evaluate val/test on the mean over flips/rotations (test-time augmentation)
    # NHWC memory layout and torch.compile (GPU settings; `make bench` measures them where a GPU is)
    channels_last: bool = False
    compile_net: bool = False
    # Right for the Right Reasons (Ross et al. 2017): lambda of the penalty on the input gradient
    # outside the ground-truth objects (dilated by rrr_margin px); 0: off
    rrr_weight: Annotated[float, Range(lambda v: v >= 0, ">= 0 (0: no Right for the Right Reasons term)")] = 0.0
    rrr_margin: Annotated[int, Range(lambda v: v >= 0, ">= 0 pixels")] = 2


@dataclass
class UNetModuleSchema(SegmentationModuleSchema):
    net: UNetSchema = field(default_factory=UNetSchema)


@dataclass
class FCNModuleSchema(SegmentationModuleSchema):
    net: FCNSchema = field(default_factory=FCNSchema)


@dataclass
class SmpModuleSchema(SegmentationModuleSchema):
    net: dict[str, Any] = field(default_factory=lambda: dict(SMP_NET))


@dataclass
class EarlyExitModuleSchema:
    _target_: str = "src.models.early_exit.EarlyExitClassifier"
    _recursive_: bool = False
    net: EarlyExitCNNSchema = field(default_factory=EarlyExitCNNSchema)
    optimizer: Any = MISSING
    scheduler: Any = None  # the model/scheduler group; None: a constant rate
    exit_weights: list[float] | None = None  # per-exit loss weights; null = equal
    monitor: str = "val/loss"
    # NHWC memory layout for the convolutions (training and early-exit inference); faster on CPUs
    # with oneDNN and on GPUs (`make bench`, early-exit section)
    channels_last: bool = False


# ---- optimizers (torch's classes, built partially: the module passes its parameters) -----
@dataclass
class AdamSchema:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: LearningRate = 1e-3
    weight_decay: WeightDecay = 0.0


@dataclass
class SGDSchema:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: LearningRate = 0.01
    momentum: float = 0.99  # as in the U-Net paper
    weight_decay: WeightDecay = 0.0

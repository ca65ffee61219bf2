"""The data sets' settings and their defaults, one dataclass per option of conf/data/ (the YAML
options only wire in paths and the augment group). Each is the data module's constructor, argument
for argument."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from omegaconf import MISSING

from src.config.schemas.constraints import BatchSize, ImageSide, OptionalImageSide, Workers

# The closed choices, as the types of their fields (see schemas/reduction.py)
# eliret's test split: the original study's 32x32 test CSV, or the six larger maior images
EliretTestSplit = Literal["test", "maior"]
# membrane labels at a lower resolution: the class of most pixels an output pixel covers, or the
# pixel at its centre (PIL NEAREST, the original study)
LabelResize = Literal["majority", "centre"]
# pet: 80/10/10 by split_seed (the original study), or the official trainval/test lists
PetSplit = Literal["random", "official"]
PetTarget = Literal["species", "breed"]  # cat/dog, or the 37 breeds
# the shortcut cue: stripes (period stripe_period, the highest frequency) or a slow brightness ramp
# whose direction names the class
Cue = Literal["stripes", "gradient"]
# where it lies: beyond cue_guard from the object; only in the band 1..cue_guard px from it (inside
# an oracle's ring of cue_guard); or a patch_size square at a random background place
CuePlace = Literal["far", "near", "patch"]
# the shortcut test split of test/...: every image its class's cue, the other class's, or none
ShortcutTestSplit = Literal["aligned", "reversed", "neutral"]
ELIRET_TEST_SPLITS: tuple[str, ...] = get_args(EliretTestSplit)
LABEL_RESIZES: tuple[str, ...] = get_args(LabelResize)
PET_SPLITS: tuple[str, ...] = get_args(PetSplit)
PET_TARGETS: tuple[str, ...] = get_args(PetTarget)
CUES: tuple[str, ...] = get_args(Cue)
CUE_PLACES: tuple[str, ...] = get_args(CuePlace)
SHORTCUT_TEST_SPLITS: tuple[str, ...] = get_args(ShortcutTestSplit)


@dataclass
class DataSchema:
    """What every data set takes: its folder and the loader's settings."""

    _target_: str = MISSING
    data_dir: str = MISSING
    batch_size: BatchSize = MISSING
    num_workers: Workers = 0
    pin_memory: bool = False


@dataclass
class GeneratedEliretSchema(DataSchema):
    """The generated eliret sets' shared settings (the segmentation set's values)."""

    batch_size: BatchSize = 10
    image_size: ImageSide = 32
    # generate the set when data_dir is empty (a folder with the original download is used as is)
    generate: bool = True
    # generator knobs (the defaults reproduce the original study's set: 100 per class, centred, mild noise)
    n_per_class: int = 100
    noise: float = 0.08
    max_offset: float = 0.0
    max_rotation: float = 0.0
    generator_seed: int = 0
    occluders: int = 0  # > 0: gray bars drawn over every image (experiment=eliret_early_exit_hard)


@dataclass
class EliretDataSchema(GeneratedEliretSchema):
    _target_: str = "src.data.eliret.EliretDataModule"
    augment: Any = "auto"  # the augment group's choice (conf/augment/); 'auto': the set's own recommendation
    test_split: Annotated[str, EliretTestSplit] = "test"  # maior: 72x88 / 80x88 images, scored one per batch


@dataclass
class EliretClsDataSchema(GeneratedEliretSchema):
    """Harder than the segmentation set: noisier, off-centre, 2000 images per class."""

    _target_: str = "src.data.classification.EliretShapeDataModule"
    batch_size: BatchSize = 64
    n_per_class: int = 2000
    noise: float = 0.2
    max_offset: float = 1.0


@dataclass
class FolderDataSchema(DataSchema):
    _target_: str = "src.data.folder.FolderDataModule"
    batch_size: BatchSize = 8
    image_size: OptionalImageSide = None  # resize every image to this square side; or
    crop_size: int | None = None  # train on random crops at native resolution, evaluate whole images in tiles of this side
    classes: int = 2  # 2: binary (one output channel); N > 2: mask values 0..N-1 or a palette PNG's indices
    foreground: int | None = None  # binary: the foreground's mask value (null: 1 for 0/1 masks, 255 for 0/255)
    mask_values: list[int] | None = None  # the stored value of each class, in class order, e.g. [0, 128, 255]
    ignore_index: int | None = None  # the mask value of unlabelled pixels (e.g. 255): no loss, no metric there
    channels: int | None = None  # 1 gray | 3 RGB | null: detected from the files
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train/val/test fractions when there is no train.txt/val.txt(/test.txt)
    split_seed: int = 0
    intensity_max: float | None = None  # 16-bit/float images: the value shown as white (null: 65535 / 1.0)
    memory_limit_mb: float = 4096.0  # larger sets (decoded, uint8) are read from disk per item instead of held
    cache_dir: str | None = None  # where the decoded arrays are cached (conf: <project>/.cache/folder); null: not cached
    augment: Any = "auto"  # the augment group's choice (conf/augment/); 'auto': the set's own recommendation


@dataclass
class MembraneDataSchema(DataSchema):
    _target_: str = "src.data.membrane.MembraneDataModule"
    batch_size: BatchSize = 4
    image_size: ImageSide = 128  # the original study; 512 is full resolution
    label_resize: Annotated[str, LabelResize] = "majority"
    val_count: int = 5  # labelled images held out for validation (and test: no public test labels)
    test_count: int = 0  # > 0: that many more labelled images held out as a separate test split
    split_seed: int = 0
    augment: Any = "auto"  # the augment group's choice (conf/augment/); 'auto': the set's own recommendation
    crop_size: int | None = None  # N: train on N px crops of the full 512 px images, evaluate whole images in N px tiles
    border_weights: bool = False  # true for model.loss=weighted_ce (the U-Net paper's weights)
    w0: float = 10.0
    sigma: float = 5.0  # pixels at full resolution (scaled to image_size)


@dataclass
class PetDataSchema(DataSchema):
    _target_: str = "src.data.pet.PetDataModule"
    batch_size: BatchSize = 16
    image_size: ImageSide = 128  # the original study
    classes: int = 3  # 3: background 0, pet 1, border 2; 2: pet (border folded in) vs rest
    split: Annotated[str, PetSplit] = "random"
    split_seed: int = 0
    download: bool = False  # true: fetch with torchvision (needs internet)
    augment: Any = "auto"  # the augment group's choice (conf/augment/); 'auto': the set's own recommendation


@dataclass
class PetClsDataSchema(DataSchema):
    _target_: str = "src.data.classification.PetClassificationDataModule"
    batch_size: BatchSize = 32
    image_size: ImageSide = 128
    target: Annotated[str, PetTarget] = "species"
    split: Annotated[str, PetSplit] = "random"
    split_seed: int = 0
    download: bool = False


@dataclass
class ShortcutDataSchema(DataSchema):
    _target_: str = "src.data.shortcut.ShortcutDataModule"
    batch_size: BatchSize = 20
    image_size: ImageSide = 32
    generate: bool = True
    n_train: int = 200
    n_val: int = 100
    n_test: int = 100  # each of the three test splits
    cue_correlation: float = 0.95  # train and val: P(the background carries the object's own class's cue)
    noise: float = 0.1  # the shape is the harder feature: noise, low contrast, small rotated objects
    contrast: float = 0.3
    min_half_axis: float = 0.15
    max_half_axis: float = 0.3
    cue: Annotated[str, Cue] = "stripes"
    cue_guard: int = 0  # > 0: the cue lies only beyond this many pixels from the object (then a 2 px ramp); 0: on every background pixel
    cue_place: Annotated[str, CuePlace] = "far"
    patch_size: int = 6
    # the training and validation images' own seed (the test splits never change with it); null:
    # the generator's draws alone, as before it existed. Studies set ${seed}: each seed its own set
    data_seed: int | None = None
    stripe_amplitude: float = 0.15  # the cue's amplitude (either kind): +-this around the background's level
    stripe_period: int = 4
    balanced_val: bool = False  # true: val is half aligned, half reversed (checkpoint selection that does not reward the cue)
    generator_seed: int = 0
    augment: Any = "auto"  # the augment group's choice (conf/augment/); 'auto': the set's own recommendation
    test_split: Annotated[str, ShortcutTestSplit] = "reversed"  # test/... and robustness; every run is also tested on all three

"""Joint image/mask augmentation with torchvision.transforms.v2.

The same random parameters move image and mask: v2 transforms take both in one call, and a
``tv_tensors.Mask`` is always resampled with nearest interpolation, so masks stay binary/integer.
torchvision (CPU, in the DataLoader workers) rather than kornia (GPU): the data sets here are small
and the CPU-only machines must run the same code. v2's geometric transforms only fill with a
constant, so the original study's reflect fill is done by reflect-padding first and cropping back after.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from src.config.errors import UserInputError


class JointAugment:
    """Applies a v2 transform to (image, mask, *other per-pixel maps) with reflect fill.

    image: (C, H, W) float; masks: (1, H, W) float or (H, W) long. Returns the same types; every
    map (a loss-weight map too) is resampled like the mask, with nearest interpolation.
    ``reflect_margin`` is the padding, as a fraction of the larger side, that the transform may
    pull into view (e.g. 0.7 for a 70% shift); it is cropped off afterwards.
    """

    def __init__(self, transform: v2.Transform, reflect_margin: float = 0.25) -> None:
        self.transform = transform
        self.reflect_margin = reflect_margin

    def __call__(self, image: torch.Tensor, *masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        height, width = image.shape[-2:]
        pad = min(int(round(self.reflect_margin * max(height, width))), height - 1, width - 1)
        # as float: torch's reflect padding has no integer kernel; nearest resampling keeps labels exact
        inputs = [tv_tensors.Image(image)] + [tv_tensors.Mask((m.unsqueeze(0) if m.ndim == 2 else m).float()) for m in masks]
        if pad > 0:
            inputs = [TF.pad(x, [pad, pad, pad, pad], padding_mode="reflect") for x in inputs]
        outputs = self.transform(*inputs)
        if pad > 0:
            outputs = [TF.center_crop(x, [height, width]) for x in outputs]
        image_out = outputs[0].as_subclass(torch.Tensor)
        masks_out = []
        for original, out in zip(masks, outputs[1:]):
            out = out.as_subclass(torch.Tensor).to(original.dtype)
            masks_out.append(out[0] if original.ndim == 2 else out)
        return (image_out, *masks_out)


def resolve(augment: JointAugment | str | None, recommended: JointAugment | None) -> JointAugment | None:
    """``augment: auto`` (the default) means the data set's recommended augmentation; ``"none"``
    none; another name builds that augmentation with its defaults (as ``augment=NAME`` does)."""
    if augment == "auto":
        return recommended
    if augment is None or augment == "none":
        return None
    if isinstance(augment, str):
        if augment not in BY_NAME:
            raise UserInputError(f"unknown augment={augment!r}; use auto, none, {', '.join(BY_NAME)}.")
        return BY_NAME[augment]()
    return augment


class Dihedral:
    """A random one of the 8 flips/quarter-turns of a square image, applied to the image and every
    map alike: lossless (no interpolation), so thin structures and labels stay exact."""

    def __call__(self, image: torch.Tensor, *masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        turns, flip = int(torch.randint(4, ())), bool(torch.randint(2, ()))
        square = image.shape[-1] == image.shape[-2]

        def move(x: torch.Tensor) -> torch.Tensor:
            x = torch.rot90(x, turns, (-2, -1)) if square else x
            return x.flip(-1) if flip else x

        return (move(image), *(move(m) for m in masks))


def dihedral() -> Dihedral:
    """Flips and 90-degree rotations (rotations only for square images)."""
    return Dihedral()


def membrane(degrees: float = 10.0, shift: float = 0.05, shear: float = 10.0, zoom: float = 0.2, flip: bool = True) -> JointAugment:
    """The original study's membrane set: rotation, shift, shear, zoom, reflect fill (+ flips)."""
    transforms: list[v2.Transform] = [
        v2.RandomAffine(degrees=degrees, translate=(shift, shift), scale=(1 - zoom, 1 + zoom), shear=shear, interpolation=v2.InterpolationMode.BILINEAR)
    ]
    if flip:
        transforms += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
    return JointAugment(v2.Compose(transforms), reflect_margin=0.25)


class _Elastic(v2.ElasticTransform):
    """v2.ElasticTransform whose blur fits small images: its kernel spans 8 sigma + 1 pixels and
    must be narrower than the image, so sigma is capped at (shorter side - 1) / 8."""

    def make_params(self, flat_inputs: list) -> dict:
        side = min(flat_inputs[0].shape[-2:])
        requested = self.sigma
        self.sigma = [min(s, (side - 1) / 8) for s in requested]
        try:
            return super().make_params(flat_inputs)
        finally:
            self.sigma = requested


def elastic(alpha: float = 300.0, sigma: float = 10.0, flip: bool = True) -> JointAugment:
    """Elastic deformation as in the U-Net paper: a smooth random displacement field (uniform noise
    blurred with ``sigma`` px, times ``alpha``). The defaults move pixels by about 2.5 px (std) over
    ~10 px, the paper's 10 px coarse-grid field at 512 px seen at 128; torchvision's own defaults
    (50, 5) give sub-pixel jitter at that size."""
    transforms: list[v2.Transform] = [_Elastic(alpha=alpha, sigma=sigma)]
    if flip:
        transforms += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
    return JointAugment(v2.Compose(transforms), reflect_margin=0.1)


def shift(fraction: float = 0.7, flip: bool = True) -> JointAugment:
    """The original study's eliret set: shifts up to +-``fraction`` of width/height, horizontal flip,
    reflect fill; lets a net trained on centred 32x32 shapes segment off-centre ones."""
    # translate is relative to the padded image, which is (1 + 2 * fraction) times larger
    relative = fraction / (1 + 2 * fraction)
    transforms: list[v2.Transform] = [v2.RandomAffine(degrees=0, translate=(relative, relative))]
    if flip:
        transforms.append(v2.RandomHorizontalFlip())
    return JointAugment(v2.Compose(transforms), reflect_margin=fraction)


# augment=NAME for programmatic use, as the config group's options
BY_NAME = {"membrane": membrane, "elastic": elastic, "shift": shift, "dihedral": dihedral}

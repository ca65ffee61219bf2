"""Joint augmentation: image and mask move together, masks stay binary/integer."""

import pytest
import torch

from src.config.errors import UserInputError
from src.data.augment import dihedral, elastic, membrane, resolve, shift

TRANSFORMS = {"membrane": membrane, "elastic": elastic, "shift": shift, "dihedral": dihedral}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_masks_stay_binary_or_integer(name: str) -> None:
    torch.manual_seed(0)
    augment = TRANSFORMS[name]()
    for _ in range(10):
        image, mask = augment(torch.rand(1, 32, 32), (torch.rand(1, 32, 32) > 0.5).float())
        assert image.shape == (1, 32, 32) and set(mask.unique().tolist()) <= {0.0, 1.0}
        image, labels = augment(torch.rand(3, 48, 48), torch.randint(0, 3, (48, 48)))
        assert labels.dtype == torch.long and set(labels.unique().tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_image_and_mask_get_the_same_parameters(name: str) -> None:
    """When the image *is* its mask, both outputs must coincide (up to interpolation at edges)."""
    torch.manual_seed(1)
    augment = TRANSFORMS[name]()
    square = torch.zeros(1, 32, 32)
    square[:, 10:22, 12:20] = 1.0
    for _ in range(10):
        image, mask = augment(square.clone(), square.clone())
        agree = ((image > 0.5).float() == mask).float().mean().item()
        assert agree > 0.97


def test_dihedral_is_lossless() -> None:
    torch.manual_seed(4)
    image = torch.rand(1, 16, 16)
    seen = set()
    for _ in range(60):
        moved, same = dihedral()(image, image.clone())
        assert torch.equal(moved, same)
        assert sorted(moved.flatten().tolist()) == sorted(image.flatten().tolist())  # a permutation of pixels
        seen.add(moved.numpy().tobytes())
    assert len(seen) == 8


def test_weight_maps_move_with_the_mask() -> None:
    torch.manual_seed(2)
    mask = torch.zeros(1, 32, 32)
    mask[:, 5:9, :] = 1.0
    image, moved_mask, moved_weight = shift()(torch.rand(1, 32, 32), mask, mask * 7.0)
    assert torch.equal(moved_weight, moved_mask * 7.0)


def test_shift_moves_shapes_off_centre() -> None:
    torch.manual_seed(3)
    mask = torch.zeros(1, 32, 32)
    mask[:, 12:20, 12:20] = 1.0
    centres = []
    for _ in range(30):
        _, moved = shift()(mask.clone(), mask.clone())
        rows = moved[0].nonzero()[:, 0].float()
        if len(rows):
            centres.append(rows.mean().item())
    assert max(abs(c - 15.5) for c in centres) > 5


def test_auto_and_bad_names() -> None:
    recommended = membrane()
    assert resolve("auto", recommended) is recommended and resolve(None, recommended) is None
    with pytest.raises(UserInputError, match="augment='flip'"):
        resolve("flip", recommended)


def test_programmatic_use_takes_the_config_names() -> None:
    from src.config.errors import UserInputError
    from src.data.augment import Dihedral, resolve

    assert resolve("none", recommended=Dihedral()) is None
    assert isinstance(resolve("auto", recommended=Dihedral()), Dihedral)
    assert isinstance(resolve("dihedral", recommended=None), Dihedral)
    assert callable(resolve("shift", recommended=None))
    with pytest.raises(UserInputError, match="unknown augment='flip'; use auto, none, membrane"):
        resolve("flip", recommended=None)

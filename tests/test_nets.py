import pytest
import torch

from src.config.errors import UserInputError
from src.config.schemas import net_config, with_defaults
from src.models.fcn import FCN
from src.models.losses import LOSSES, build_loss, check_task
from src.models.smp_net import smp_model
from src.models.unet import UNet


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear", "nearest"])
@pytest.mark.parametrize("skip", [True, False])
def test_unet_variants_keep_the_input_size(upsampling: str, skip: bool) -> None:
    net = with_defaults(UNet, 1, 3, depth=3, base_width=4, upsampling=upsampling, skip=skip, dropout=0.5)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 3, 32, 32)


def test_unet_widths_follow_the_paper() -> None:
    net = with_defaults(UNet, 1, 1, depth=4, base_width=64)
    assert [e[0].out_channels for e in net.encoders] == [64, 128, 256, 512]
    assert net.bottleneck[0].out_channels == 1024


def test_no_skip_ablation_has_no_concatenation() -> None:
    with_skip, without = with_defaults(UNet, 1, 1, depth=2, base_width=4), with_defaults(UNet, 1, 1, depth=2, base_width=4, skip=False)
    assert with_skip.decoders[0][0].in_channels == 2 * without.decoders[0][0].in_channels


def test_dropout_only_at_the_deepest_levels() -> None:
    net = with_defaults(UNet, 1, 1, depth=4, base_width=4, dropout=0.5, dropout_levels=2)
    has_dropout = [any(isinstance(m, torch.nn.Dropout2d) for m in e) for e in net.encoders]
    assert has_dropout == [False, False, False, True]
    assert any(isinstance(m, torch.nn.Dropout2d) for m in net.bottleneck)


def test_unet_refuses_or_pads_odd_sizes() -> None:
    with pytest.raises(UserInputError, match="divisible by 8.*pad_input=true"):
        with_defaults(UNet, 1, 1, depth=3, base_width=4)(torch.rand(1, 1, 30, 45))
    out = with_defaults(UNet, 1, 1, depth=3, base_width=4, pad_input=True)(torch.rand(1, 1, 30, 45))
    assert out.shape == (1, 1, 30, 45)


def test_unet_segments_arbitrary_sizes_divisible_by_2_to_depth() -> None:
    assert with_defaults(UNet, 1, 1, depth=3, base_width=4)(torch.rand(1, 1, 72, 88)).shape == (1, 1, 72, 88)


def test_unet_bad_arguments() -> None:
    with pytest.raises(UserInputError, match="upsampling"):
        with_defaults(UNet, 1, 1, upsampling="cubic")
    with pytest.raises(UserInputError, match="depth"):
        with_defaults(UNet, 1, 1, depth=0)


def test_fcn_matches_the_original_study_shapes() -> None:
    net = with_defaults(FCN, 1, 1)
    convs = [m for m in net.layers if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(type(m).__name__, m.out_channels, m.stride) for m in convs] == [
        ("Conv2d", 20, (2, 2)),
        ("Conv2d", 40, (2, 2)),
        ("ConvTranspose2d", 40, (2, 2)),
        ("ConvTranspose2d", 1, (2, 2)),
    ]
    assert all(m.kernel_size == (5, 5) for m in convs)
    assert net(torch.rand(3, 1, 32, 32)).shape == (3, 1, 32, 32)
    assert with_defaults(FCN, 3, 2, widths=(8, 16, 32))(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("arch", ["Unet", "FPN", "DeepLabV3Plus", "unetplusplus"])
def test_smp_architectures_by_name(arch: str) -> None:
    net = with_defaults(smp_model, arch, in_channels=1, out_channels=3, encoder_name="resnet18")
    net.eval()
    assert net(torch.rand(1, 1, 64, 64)).shape == (1, 3, 64, 64)


def test_smp_bad_names() -> None:
    with pytest.raises(UserInputError, match="unknown model.net.arch"):
        with_defaults(smp_model, "NotANet", 1, 1)
    with pytest.raises(UserInputError, match="encoder"):
        with_defaults(smp_model, "Unet", 1, 1, encoder_name="no-such-encoder")


def test_smp_pretrained_weights_offline_fail_fast_with_the_fix(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match="encoder_weights=null"):
        with_defaults(smp_model, "Unet", 3, 1, encoder_name="resnet18", encoder_weights="imagenet")


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_every_allowed_loss_is_differentiable(task: str) -> None:
    channels = 3 if task == "multiclass" else 1
    logits = torch.randn(2, channels, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8)) if task == "multiclass" else torch.randint(0, 2, (2, 1, 8, 8)).float()
    weight = torch.rand(2, 1, 8, 8) + 0.5
    for name in LOSSES[task]:
        _, fn = build_loss(name, task)
        loss = fn(logits, target, weight)
        loss.backward()
        assert loss.ndim == 0 and torch.isfinite(loss)


def test_weighted_ce_weights_pixels_and_needs_weights() -> None:
    _, fn = build_loss("weighted_ce", "binary")
    logits, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    only_first = torch.tensor([[[[4.0, 0.0], [0.0, 0.0]]]])
    assert fn(logits, target, only_first).item() == pytest.approx(4 * 0.6931472 / 4, rel=1e-5)
    with pytest.raises(UserInputError, match="data.border_weights=true"):
        fn(logits, target, None)


def test_loss_task_mismatch_is_refused() -> None:
    with pytest.raises(UserInputError, match="does not fit task 'multiclass'"):
        build_loss("mse", "multiclass")
    with pytest.raises(UserInputError, match="one output channel"):
        check_task("binary", 3)
    with pytest.raises(UserInputError, match="unknown task"):
        check_task("detection", 1)


def test_test_time_augmentation_is_flip_and_rotation_invariant() -> None:
    from src.models.segmentation import SegmentationModule

    module = with_defaults(
        SegmentationModule,
        net=net_config("unet", depth=2, base_width=4),
        task="binary",
        in_channels=1,
        out_channels=1,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
        tta=True,
    ).eval()
    images = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        reference = module.predict_logits(images)
        assert torch.allclose(module.predict_logits(images.flip(3)).flip(3), reference, atol=1e-5)
        assert torch.allclose(torch.rot90(module.predict_logits(torch.rot90(images, 1, (2, 3))), -1, (2, 3)), reference, atol=1e-5)
        module.hparams.tta = False
        assert not torch.allclose(module.predict_logits(images.flip(3)).flip(3), module.predict_logits(images), atol=1e-5)

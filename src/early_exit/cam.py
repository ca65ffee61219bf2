"""Class activation maps of the exits, free with a pooled-linear head.

An exit head is global average pooling then a linear layer, on the stage's features
(``pool_linear``) or on its own 3x3 conv's features (``conv_pool_linear``). For such a head the
class activation map is exact: CAM_c(x, y) = sum_j w_cj h_j(x, y), whose spatial mean plus b_c is
the logit of class c (Zhou et al., 2016). It reuses the features the exit computed anyway: one
weighted sum over channels, no backward pass, unlike Grad-CAM or gradients through captum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from src.models.early_exit_cnn import ExitHead


def class_activation_map(head: ExitHead, head_features: torch.Tensor, target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) CAM of ``target`` classes from the head's features (N, C, h, w), ReLU'd like
    Grad-CAM (the evidence for the class) and upsampled bilinearly to the input ``size``."""
    weights = head.linear.weight[target]  # (N, C)
    cam = torch.einsum("nchw,nc->nhw", head_features, weights).relu()
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]

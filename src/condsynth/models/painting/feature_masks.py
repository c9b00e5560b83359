"""Feature masks and the perceptual term (thesis Sec. 6.3.3.2).

The reward's L1 is weighted towards the image's salient detail by f^l_mask = norm(VGG_l(I)):
f^17_mask (a deep, coarse layer) weights the canvas term L_m (Eq. 6.4), f^2_mask (an early, fine
layer) the focus term L_focus (Eq. 6.6). L_vgg, the perceptual part of L_m, compares the canvas
and the target in VGG-16's relu2_2 and relu3_3.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.losses.perceptual import PerceptualLoss
from condsynth.nn.blocks import resize
from condsynth.nn.vgg import vgg16_features


# =============================================================================================

def _minmax(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    flat = x.flatten(1)
    lo, hi = flat.min(1)[0].view(-1, 1, 1, 1), flat.max(1)[0].view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo + eps)


class FeatureMasks(nn.Module):
    """f^l_mask = norm(VGG_l(I)) in [0, 1]   (Sec. 6.3.3.2), and the perceptual term L_vgg.

    ``kind``:
      * ``vgg``: VGG-16 ``features`` index 17 (conv4_1 + ReLU) for the canvas reward and index 2
        (conv1_2 + ReLU) for the focus reward; channel mean -> bilinear upsample -> min-max.
        Needs pretrained ImageNet weights (``condsynth.nn.vgg``; never random).
      * ``saliency``: a weight-free stand-in used by the bundled agent, because no pretrained
        VGG-16 can be fetched here: the coarse mask is the local luminance+colour contrast pooled
        over 8x8 cells (like conv4_1's 1/8 resolution), the fine mask the gradient magnitude at
        full resolution (like conv1_2's edge responses). Both min-max normalised.
      * ``ground_truth``: the dataset's foreground mask (training-only ablation).
      * ``none``: all ones (turns the masked L1 into plain L1: the "no feature mask" ablation).

    L_vgg is the shared ``painting`` perceptual loss (relu2_2 and relu3_3, mean squared difference,
    averaged) per image, on the same VGG-16 as the masks.
    """

    def __init__(self, kind: str = "vgg", vgg_weights: Optional[str] = None, vgg_perceptual: bool = True):
        super().__init__()
        self.kind = kind
        self.vgg = self.l_vgg = None
        if kind == "vgg" or vgg_perceptual:
            # relu1_2 and relu4_1 follow the thesis's "layer 2" (conv1_2) and "layer 17" (conv4_1).
            self.vgg = vgg16_features(taps=("relu1_2", "relu2_2", "relu3_3", "relu4_1"), pretrained=True,
                                      weights_path=vgg_weights, input_range=(0.0, 1.0))
            self.l_vgg = PerceptualLoss.from_preset("painting", reduction="per_sample", features=self.vgg)

    @torch.no_grad()
    def masks(self, image: torch.Tensor, mask: Optional[torch.Tensor] = None, size: int = 128,
              focus_size: int = 64):
        """-> (f^17_mask at size, f^2_mask at focus_size), each ``B x 1 x S x S``."""
        b = image.shape[0]
        if self.kind == "vgg":
            outs = self.vgg(image)
            m17 = outs["relu4_1"].mean(1, keepdim=True)
            m2 = outs["relu1_2"].mean(1, keepdim=True)
        elif self.kind == "saliency":
            lum = (0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2])[:, None]
            gx = lum[..., :, 1:] - lum[..., :, :-1]
            gy = lum[..., 1:, :] - lum[..., :-1, :]
            grad = F.pad(gx.abs(), (0, 1, 0, 0)) + F.pad(gy.abs(), (0, 0, 0, 1))
            blur = F.avg_pool2d(image, 9, 1, 4, count_include_pad=False)
            contrast = (image - blur).abs().mean(1, keepdim=True) + grad
            m17 = F.avg_pool2d(contrast, 8)
            m2 = F.avg_pool2d(grad, 3, 1, 1)
        elif self.kind == "ground_truth":
            if mask is None:
                raise ValueError("feature mask 'ground_truth' needs the dataset's masks")
            m17 = m2 = mask
        elif self.kind == "none":
            ones = image.new_ones(b, 1, size, size)
            return ones, image.new_ones(b, 1, focus_size, focus_size)
        else:
            raise ValueError(f"unknown feature mask kind '{self.kind}'")
        return _minmax(resize(m17, size)), _minmax(resize(m2, focus_size))

    def perceptual(self, canvas: torch.Tensor, target_feats: dict) -> torch.Tensor:
        """L_vgg per image, against the target's features from :meth:`perceptual_targets`."""
        return self.l_vgg(canvas, target_features=target_feats)

    @torch.no_grad()
    def perceptual_targets(self, image: torch.Tensor) -> dict:
        return self.l_vgg.target_features(image)

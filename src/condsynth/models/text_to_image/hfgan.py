"""HfGAN: hierarchically-fused GAN for text-to-image synthesis (thesis ch. 3; spec-hfgan-ldcgan.md §3).

One generator and one discriminator, trained end to end. The generator fuses the feature maps of its three
stages, locally (dense blocks with a residual) and globally (upsampled lateral paths added to later stages),
and draws the image only at the last stage; a single joint discriminator sees only that image.

Generator (§3.4.3, the spec's table; N_g = 32, paper sizes 64 / 128 / 256, the world's 16 / 32 / 64)::

    x0      = [z, I_s]                        I_s = F_ca(s), the conditioning augmentation (spec §3.3)
    F_1     = H_s1(x0)                        FC -> 16 N_g x 4 x 4 -> four upscale layers -> N_g x 64 x 64
    F_d,0   = F_1 ⊕ tile(I_s) ⊕ A_1(e, F_1)                                              (Eq. 3.6)
    F_2     = H_dup(H_dense(F'_d,0) + F'_d,0)  F' = 3x3 conv + ReLU of F_d,0 (spec H2); H_dense = 4 dense
                                               3x3 conv-ReLU layers (growth g) + 1x1 local feature fusion
    F_2,f   = F_2 + H_sup1(F_1)                                                           (Eq. 3.7)
    F_3     = the same block (own weights) on F_2,f ⊕ tile(I_s) ⊕ A_2(e, F_2,f)           (Eq. 3.8)
    F_3,f   = F_3 + H_sup2(H_sup1(F_1)) + H_sup2'(F_2)      (the pre-fusion F_2, literally) (Eq. 3.9)
    t̂       = tanh(conv3x3(F_3,f))

H_dup is an upscale layer (nearest x2, 3x3 conv, BN, GLU); H_sup are nearest x2 + 1x1 conv ("weighted addition";
``sup_kernel`` 3 for §3.4.2's wording, H5). The two H_sup2 of Eq. 3.9 are separate convs unless ``share_sup2``.
Every conv pads by 1 (the thesis's "padding 0" cannot give the stated sizes, H4).

Discriminator (§3.4.3; :class:`condsynth.nn.discriminators.JointDiscriminator` preset ``hfgan``): four 3x3
stride-2 conv-BN-LReLU layers to 8 N_d x 16 x 16, two 4x4 down blocks to 32 N_d x 4 x 4, two 3x3 blocks back to
8 N_d, then the unconditional and the conditional (s tiled and concatenated) heads. Losses and schedule in
:mod:`condsynth.models.text_to_image.base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from condsynth.config import bounded
from condsynth.models.text_to_image.base import GeneratorOutput, TextToImageConfig, TextToImageGAN
from condsynth.models.text_to_image.stacked import stage_discriminator
from condsynth.nn.discriminators import JointDiscriminator
from condsynth.nn.text_to_image import ConditioningAugmentation, InitialStage, WordAttention, tile, upscale_layer


@dataclass
class HfGANConfig(TextToImageConfig):
    dense_layers: int = bounded(4, 1, 32)                # 4 dense layers per block [S]
    growth: int = bounded(32, 1, 1024)                   # g, not stated (spec H3: RDN's 32)
    sup_kernel: Literal[1, 3] = 1                        # H_sup conv: 1x1 (definition) or 3x3 (§3.4.2), H5
    share_sup2: bool = False                             # one H_sup2 for both terms of Eq. 3.9
    residual_projection: bool = True                     # H2: project F_d,0 to N_g before the dense block; false: the
                                                         # LFF keeps F_d,0's width and H_dup maps it to N_g
    d_kernel: Literal[3, 4] = 3                          # D's part-1 kernels: 3x3 (thesis) or 4x4 (AttnGAN)
    # hfgan: the thesis's D (M1 to 16x16, two down blocks, two 3x3 blocks); stacked_last: the stacked baseline's
    # discriminator at the output size (AttnGAN's D_NET for it). At 256² the two are the same design (D_NET256);
    # at the world's 64² the thesis's keeps its extra blocks and overpowered G (docs/hfgan.md)
    d_arch: Literal["hfgan", "stacked_last"] = "hfgan"


class DenseFusionBlock(nn.Module):
    """H_dense with local feature fusion and the local residual: ``LFF(dense(F')) + F'`` (RDN style, spec H2-H3)."""

    def __init__(self, in_channels: int, channels: int, layers: int = 4, growth: int = 32, project: bool = True):
        super().__init__()
        width = channels if project else in_channels
        self.project = nn.Sequential(nn.Conv2d(in_channels, channels, 3, 1, 1), nn.ReLU(True)) if project else None
        self.layers = nn.ModuleList(nn.Sequential(nn.Conv2d(width + k * growth, growth, 3, 1, 1), nn.ReLU(True))
                                    for k in range(layers))
        self.fuse = nn.Conv2d(width + layers * growth, width, 1)       # LFF, 1x1
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.project(x) if self.project is not None else x
        feats = [base]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return self.fuse(torch.cat(feats, 1)) + base


def lateral(channels: int, kernel: int) -> nn.Sequential:
    """H_sup: nearest x2 then a stride-1 conv (1x1 by default)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, channels, kernel, 1,
                                                                                kernel // 2))


class HfGANGenerator(nn.Module):
    def __init__(self, image_size: int = 256, ngf: int = 32, z_dim: int = 100, cond_dim: int = 100,
                 text_dim: int = 256, dense_layers: int = 4, growth: int = 32, sup_kernel: int = 1,
                 share_sup2: bool = False, residual_projection: bool = True):
        super().__init__()
        self.ca = ConditioningAugmentation(text_dim, cond_dim)
        self.stage1 = InitialStage(z_dim + cond_dim, ngf, image_size // 4)          # H_s1 -> F_1
        self.attn1 = WordAttention(ngf, text_dim)
        self.attn2 = WordAttention(ngf, text_dim)
        joint = 2 * ngf + cond_dim                                                   # F ⊕ I_s ⊕ I_w
        self.dense2 = DenseFusionBlock(joint, ngf, dense_layers, growth, residual_projection)
        self.dense3 = DenseFusionBlock(joint, ngf, dense_layers, growth, residual_projection)
        self.dup2 = upscale_layer(self.dense2.out_channels, ngf)                     # H_dup
        self.dup3 = upscale_layer(self.dense3.out_channels, ngf)                     # H'_dup
        self.sup1 = lateral(ngf, sup_kernel)                                         # H_sup1
        self.sup2_from_1 = lateral(ngf, sup_kernel)                                  # H_sup2 on H_sup1(F_1)
        self.sup2_from_2 = self.sup2_from_1 if share_sup2 else lateral(ngf, sup_kernel)   # H_sup2 on F_2
        self.to_image = nn.Sequential(nn.Conv2d(ngf, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, sentence: torch.Tensor, words: torch.Tensor,
                pad_mask: torch.Tensor | None = None, sample_condition: bool = True) -> GeneratorOutput:
        code, mu, logvar = self.ca(sentence, sample=sample_condition)
        f1 = self.stage1(torch.cat([z, code.to(z.dtype)], 1))
        w1, beta1 = self.attn1(f1, words, pad_mask)
        f2 = self.dup2(self.dense2(torch.cat([f1, tile(code, f1), w1], 1)))         # Eq. 3.6
        up1 = self.sup1(f1)
        f2f = f2 + up1                                                               # Eq. 3.7
        w2, beta2 = self.attn2(f2f, words, pad_mask)                                 # query F_2,f (spec H6)
        f3 = self.dup3(self.dense3(torch.cat([f2f, tile(code, f2f), w2], 1)))        # Eq. 3.8
        f3f = f3 + self.sup2_from_1(up1) + self.sup2_from_2(f2)                       # Eq. 3.9
        image = self.to_image(f3f)
        return GeneratorOutput([image], code, mu, logvar, [beta1, beta2],
                               {"F_1": f1, "F_2": f2, "F_2f": f2f, "F_3": f3, "F_3f": f3f})


class HfGAN(TextToImageGAN):
    name = "hfgan"
    ModelConfig = HfGANConfig

    def build_generator(self):
        c = self.model_cfg
        return HfGANGenerator(c.image_size, c.ngf, c.z_dim, c.cond_dim, c.text_dim, c.dense_layers, c.growth,
                              c.sup_kernel, c.share_sup2, c.residual_projection)

    def build_discriminators(self):
        c = self.model_cfg
        cond = c.text_dim if c.d_condition == "sentence" else c.cond_dim
        if c.d_arch == "stacked_last":
            return {"D": (stage_discriminator(c.image_size, c.ndf, cond), 0)}
        d = JointDiscriminator.preset("hfgan", image_size=c.image_size, ndf=c.ndf, cond_dim=cond,
                                      kernel_size=c.d_kernel)
        return {"D": (d, 0)}

"""The stacked baseline: an AttnGAN-style three-stage generator with three discriminators (Xu et al., CVPR 2018),
in the same code as HfGAN so that the thesis's claim (one fused generator and one D beat stacked G-D pairs,
Table 3.3) is measured side by side: same text encoder, conditioning augmentation, N_g, objective and data.

Generator (AttnGAN's G_NET; paper sizes 64 / 128 / 256, the world's 16 / 32 / 64)::

    h_1 = H_s1([z, I_s])                                   the same initial stage as HfGAN (FC, upscale layers)
    h_k = up(ResBlocks(h_{k-1} ⊕ A_k(e, h_{k-1})))         k = 2, 3: word attention, ``r_num`` residual blocks
                                                           (conv3x3-BN-GLU-conv3x3-BN + x), an upscale layer
    x̂_k = tanh(conv3x3(h_k))                               an image at every stage

Discriminators (AttnGAN's D_NET64/128/256; :class:`condsynth.nn.discriminators.JointDiscriminator` presets
``attngan64/128/256``): D_k judges x̂_k against the real image resized to its size, each with the unconditional
and conditional heads. For the world's 16² and 32² stages the trunk ends at 4 x 4 with fewer stride-2 layers.
Every D's loss and every G term of Eq. 3.3-3.4 is summed; L_DAMSM is on the last image (AttnGAN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from condsynth.config import bounded
from condsynth.models.text_to_image.base import GeneratorOutput, TextToImageConfig, TextToImageGAN
from condsynth.nn.discriminators import JointDiscriminator
from condsynth.nn.text_to_image import ConditioningAugmentation, InitialStage, WordAttention, upscale_layer


@dataclass
class StackedConfig(TextToImageConfig):
    r_num: int = bounded(2, 0, 16)                       # residual blocks per refinement stage (AttnGAN R_NUM)


class GLUResBlock(nn.Module):
    """AttnGAN's ResBlock: conv3x3 (C -> 2C) -> BN -> GLU -> conv3x3 (C -> C) -> BN, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels * 2, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels * 2), nn.GLU(dim=1),
                                  nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RefineStage(nn.Module):
    """AttnGAN's NEXT_STAGE_G: word context, residual blocks on ``h ⊕ I_w``, an upscale layer back to N_g."""

    def __init__(self, ngf: int, text_dim: int, r_num: int):
        super().__init__()
        self.attn = WordAttention(ngf, text_dim)
        self.residual = nn.Sequential(*[GLUResBlock(ngf * 2) for _ in range(r_num)])
        self.up = upscale_layer(ngf * 2, ngf)

    def forward(self, h, words, pad_mask):
        context, beta = self.attn(h, words, pad_mask)
        return self.up(self.residual(torch.cat([h, context], 1))), beta


class StackedGenerator(nn.Module):
    def __init__(self, image_size: int = 256, ngf: int = 32, z_dim: int = 100, cond_dim: int = 100,
                 text_dim: int = 256, r_num: int = 2):
        super().__init__()
        self.ca = ConditioningAugmentation(text_dim, cond_dim)
        self.stage1 = InitialStage(z_dim + cond_dim, ngf, image_size // 4)
        self.stage2 = RefineStage(ngf, text_dim, r_num)
        self.stage3 = RefineStage(ngf, text_dim, r_num)
        self.to_image = nn.ModuleList(nn.Sequential(nn.Conv2d(ngf, 3, 3, 1, 1), nn.Tanh()) for _ in range(3))

    def forward(self, z, sentence, words, pad_mask=None, sample_condition: bool = True) -> GeneratorOutput:
        code, mu, logvar = self.ca(sentence, sample=sample_condition)
        h1 = self.stage1(torch.cat([z, code.to(z.dtype)], 1))
        h2, beta2 = self.stage2(h1, words, pad_mask)
        h3, beta3 = self.stage3(h2, words, pad_mask)
        images = [head(h) for head, h in zip(self.to_image, (h1, h2, h3))]
        return GeneratorOutput(images, code, mu, logvar, [beta2, beta3], {"h_1": h1, "h_2": h2, "h_3": h3})


def stage_discriminator(size: int, ndf: int, cond_dim: int) -> JointDiscriminator:
    """AttnGAN's D_NET for a ``size`` image: the presets at 64 / 128 / 256; below 64 (the world's first stages) the
    same 4x4 trunk with stride 1 where the image is too small to halve four times (ending at 4 x 4)."""
    if size in (64, 128, 256):
        return JointDiscriminator.preset(f"attngan{size}", ndf=ndf, cond_dim=cond_dim)
    halvings = {4: 0, 8: 1, 16: 2, 32: 3}.get(size)
    if halvings is None:
        raise ValueError(f"stage size {size}: the stacked discriminators take 4 x 2^k images up to 256")
    strides = (2,) * halvings + (1,) * (4 - halvings)
    return JointDiscriminator(image_size=size, ndf=ndf, cond_dim=cond_dim, kernel_size=4, strides=strides,
                              first_norm=False)


class StackedT2I(TextToImageGAN):
    name = "stacked_t2i"
    ModelConfig = StackedConfig

    def build_generator(self):
        c = self.model_cfg
        return StackedGenerator(c.image_size, c.ngf, c.z_dim, c.cond_dim, c.text_dim, c.r_num)

    def build_discriminators(self):
        c = self.model_cfg
        cond = c.text_dim if c.d_condition == "sentence" else c.cond_dim
        sizes = (c.image_size // 4, c.image_size // 2, c.image_size)
        return {f"D{k}": (stage_discriminator(s, c.ndf, cond), k) for k, s in enumerate(sizes)}

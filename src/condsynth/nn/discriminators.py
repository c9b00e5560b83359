"""PatchGAN discriminators (pix2pix §3.2.2; pix2pixHD's multi-scale stack).

``PatchDiscriminator(n_layers=3)`` is the 70x70 PatchGAN: C64-C128-C256-C512(stride 1)-conv->1,
4x4 kernels, LeakyReLU 0.2, no norm on the first layer. ``n_layers=0`` is the 1x1 PixelGAN,
``n_layers=1`` the 16x16 PatchGAN, ``n_layers=5`` the 286x286 one (spec-translation §2.6). The
output is a map of logits, one per overlapping patch; losses average over it.

:class:`LTPCritic` is LearningToPaint's reward critic, a WGAN critic of (target, canvas) pairs.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm
from torch.nn.utils.parametrizations import weight_norm

from condsynth.nn.blocks import TReLU, make_norm, norm_uses_bias


def receptive_field(n_layers: int) -> int:
    """Receptive field (pixels) of a PatchDiscriminator: 1, 16, 34, 70, 142, 286 for 0..5 layers."""
    if n_layers == 0:
        return 1
    rf = 1
    # layers from the output back to the input: final conv k4 s1, the stride-1 C block k4 s1,
    # then (n_layers) k4 s2 blocks.
    for k, s in [(4, 1), (4, 1)] + [(4, 2)] * n_layers:
        rf = rf * s + (k - s)
    return rf


class PatchDiscriminator(nn.Module):
    """``padding`` of the 4x4 convs: 1 (pix2pix, junyanz's NLayerDiscriminator) or 2 (pix2pixHD's
    ``padw = ceil((kw - 1) / 2)``, a slightly larger logit map: 35x35 instead of 30x30 at 256 with 3 layers)."""

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral_norm: bool = False, return_features: bool = False, padding: int = 1):
        super().__init__()
        self.return_features = return_features
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        bias = norm_uses_bias(norm)
        blocks: list[nn.Module] = []
        if n_layers == 0:  # PixelGAN: 1x1 convs (pix2pix's "pixel" D)
            blocks = [
                nn.Sequential(sn(nn.Conv2d(in_channels, ndf, 1)), nn.LeakyReLU(0.2, True)),
                nn.Sequential(sn(nn.Conv2d(ndf, ndf * 2, 1, bias=bias)), make_norm(norm, ndf * 2),
                              nn.LeakyReLU(0.2, True)),
                nn.Sequential(sn(nn.Conv2d(ndf * 2, 1, 1))),
            ]
        else:
            blocks.append(nn.Sequential(sn(nn.Conv2d(in_channels, ndf, 4, 2, padding)), nn.LeakyReLU(0.2, True)))
            mult = 1
            for n in range(1, n_layers + 1):
                prev, mult = mult, min(2 ** n, 8)
                stride = 2 if n < n_layers else 1  # the last C block keeps the resolution
                blocks.append(nn.Sequential(
                    sn(nn.Conv2d(ndf * prev, ndf * mult, 4, stride, padding, bias=bias)),
                    make_norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)))
            blocks.append(nn.Sequential(sn(nn.Conv2d(ndf * mult, 1, 4, 1, padding))))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats if self.return_features else x


class MultiScaleDiscriminator(nn.Module):
    """``num_d`` PatchDiscriminators on the input downsampled by 1, 2, 4, ... (pix2pixHD).

    Returns a list (one entry per scale) of logit maps, or of feature lists if
    ``return_features`` (for the feature-matching loss). ``patch_kwargs`` (``padding=2`` for
    pix2pixHD's layers among them) go to every scale's PatchDiscriminator.
    """

    def __init__(self, num_d: int = 3, **patch_kwargs):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(**patch_kwargs) for _ in range(num_d))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list:
        outs = []
        for i, d in enumerate(self.scales):
            if i > 0:
                x = self.downsample(x)
            outs.append(d(x))
        return outs


# ==================================================================================================================
# Joint unconditional/conditional discriminators (StackGAN++, AttnGAN; the thesis's HfGAN, LDcGAN and AVWnet)
# ==================================================================================================================
# One D judges an image twice: "is it real?" (unconditional head) and "is it real *and* does it match c?" (conditional
# head: c tiled over the feature map and concatenated), plus optionally an auxiliary head (LDcGAN's age groups,
# AVWnet's landmark regression). Their logits feed losses.gan.joint_d_loss / joint_g_loss. A JointDiscriminator is a
# JointTrunk (image -> features) and a JointHead; the configuration of each discriminator of the thesis methods:
#
# - HfGAN's D (thesis §3.4.3), 256^2: M1 = part 1, 3x3 convs at strides 2,2,2,2 -> 8N_d x 16^2; M2 = down (16, 32)
#   -> 32N_d x 4^2; M3 = refine (16, 8) -> 8N_d x 4^2; heads on 8N_d x 4^2 with a 256-d sentence condition.
# - The stacked (AttnGAN) baseline's D_NET64/128/256: 4x4 convs at strides 2,2,2,2, no BN on the first, so 64^2 ->
#   8N_d x 4^2 directly; 128^2 adds down (16,) and refine (8,); 256^2 down (16, 32) and refine (16, 8); 256-d condition.
# - LDcGAN's D_G (§4.4.1), 128^2: C1-C4 = part 1 at strides 2,2,2,1 -> 8N_d x 16^2, the 10-d age one-hot tiled and
#   concatenated there (522 channels), head stride 2 (-> 8x8, then an 8x8 logit conv), aux: a 10-way age classifier.
# - AVWnet's D_1 (§5.4.1), 128^2: part 1 at strides 2,2,2,1, down (16, 16), refine (16,) -> 16N_d x 4^2; a 128-d audio
#   code; aux: the 136-d landmark regression. D_0, 64^2: the same with strides 2,2,1,1.
#
# Each is `JointDiscriminator.preset(name, **overrides)` with the name in JOINT_D_PRESETS. Where the thesis (the seed)
# and the specs disagree, the presets follow the thesis:
# - kernel 3x3 in part 1 for HfGAN ("four 3x3 convolutional layers"); the spec takes AttnGAN's 4x4 (kernel_size=4).
# - BN after every part-1 conv ("each layer is followed by a BatchNorm and a LeakyReLU", §3.4.3; "four 3x3 Conv layers
#   with BatchNorms", §4.4.1 and §5.4.1); the specs drop it on the first conv, as AttnGAN/StackGAN++ do
#   (first_norm=False, which the stacked-baseline presets use since they are AttnGAN's code).
# - HfGAN's condition is I_s, the conditioning-augmented sentence vector (Eq. 3.3 "D(t_i | I_s^i)"); the spec feeds the
#   raw sentence embedding s as AttnGAN does. The D takes whichever vector the method passes.
# Not given by the thesis, taken from the specs: the part-1 strides for 128 and 64 inputs (stride 1 last, so that the
# map is 16x16), LDcGAN's heads on the 16x16 map (a 3x3 stride-2 conv then an 8x8 logit conv; thesis: the age is
# concatenated "to the output of fourth convolution layer"), the aux heads.


def trunk_strides(image_size: int) -> tuple[int, ...]:
    """Strides of the four part-1 convs that take ``image_size`` to 16x16: stride 2 first, then 1.
    256 -> (2, 2, 2, 2), 128 -> (2, 2, 2, 1), 64 -> (2, 2, 1, 1)."""
    halvings = {16 * 2 ** k: k for k in range(5)}.get(image_size)
    if halvings is None:
        raise ValueError(f"image_size {image_size}: the joint trunk takes 16 * 2^k inputs (16 ... 256) to 16x16; "
                         f"pass strides= for other sizes")
    return (2,) * halvings + (1,) * (4 - halvings)


def _conv_norm_lrelu(in_ch: int, out_ch: int, kernel: int, stride: int, norm: str = "batch") -> nn.Sequential:
    """conv -> norm -> LeakyReLU(0.2), halving the size at stride 2 and keeping it at stride 1 (even kernels padded
    one more on the right/bottom)."""
    if stride == 1 and kernel % 2 == 0:
        pad = nn.ZeroPad2d(((kernel - 1) // 2, kernel // 2, (kernel - 1) // 2, kernel // 2))
        layers = [pad, nn.Conv2d(in_ch, out_ch, kernel, 1, 0, bias=norm_uses_bias(norm))]
    else:
        layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, bias=norm_uses_bias(norm))]
    return nn.Sequential(*layers, make_norm(norm, out_ch), nn.LeakyReLU(0.2, inplace=True))


class JointTrunk(nn.Module):
    """Image -> features, in three parts (thesis §3.4.3 and §5.4.1; AttnGAN's D_NET64/128/256):

    1. four ``kernel_size`` convs, 3 -> N_d -> 2N_d -> 4N_d -> 8N_d channels, each with norm and LeakyReLU 0.2
       (``first_norm=False``: none on the first), ``strides`` from :func:`trunk_strides` (to 16x16) unless given;
    2. one 4x4 stride-2 down block (conv-norm-LReLU) per entry of ``down``, the entry being its width in N_d;
    3. one 3x3 stride-1 block per entry of ``refine`` (width in N_d).

    ``out_channels`` and ``out_size`` give the feature shape for the head."""

    def __init__(self, in_channels: int = 3, image_size: int = 128, ndf: int = 64, kernel_size: int = 3,
                 strides: tuple[int, ...] | None = None, first_norm: bool = True, down: tuple[int, ...] = (),
                 refine: tuple[int, ...] = (), norm: str = "batch"):
        super().__init__()
        strides = trunk_strides(image_size) if strides is None else tuple(strides)
        if len(strides) != 4 or any(s not in (1, 2) for s in strides):
            raise ValueError(f"strides {strides}: four convs of stride 1 or 2")
        size = image_size
        for s in strides:
            if size % s:
                raise ValueError(f"image_size {image_size} is not divisible by the strides {strides}")
            size //= s
        widths = [in_channels, ndf, ndf * 2, ndf * 4, ndf * 8]
        layers = [_conv_norm_lrelu(widths[i], widths[i + 1], kernel_size, s, norm if (i or first_norm) else "none")
                  for i, s in enumerate(strides)]
        ch = widths[-1]
        for mult in down:
            if size % 2:
                raise ValueError(f"a {size}x{size} map cannot be halved by another down block")
            layers.append(_conv_norm_lrelu(ch, ndf * mult, 4, 2, norm))
            ch, size = ndf * mult, size // 2
        for mult in refine:
            layers.append(_conv_norm_lrelu(ch, ndf * mult, 3, 1, norm))
            ch = ndf * mult
        self.net = nn.Sequential(*layers)
        self.out_channels, self.out_size = ch, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class JointLogits(NamedTuple):
    """Outputs of a JointHead; None where the head or the input is absent. ``uncond``, ``cond``: one logit per
    sample (``B``); ``wrong``: one per mismatched pair; ``aux``: ``B x n_aux``; ``features``: the trunk output."""
    uncond: torch.Tensor | None
    cond: torch.Tensor | None
    wrong: torch.Tensor | None
    aux: torch.Tensor | None
    features: torch.Tensor


class JointHead(nn.Module):
    """The heads on ``channels x size x size`` features (AttnGAN's D_GET_LOGITS, StackGAN++):

    - unconditional: conv ``k x k`` stride k -> one logit, k = size // stride (conv 4x4/s4 on a 4x4 map);
    - conditional (``cond_dim > 0``): c (``B x cond_dim``, or already a ``B x cond_dim x size x size`` map) tiled to
      the map, concatenated, conv 3x3 (channels + cond_dim -> channels) + norm + LeakyReLU, then the same k x k conv;
    - with ``stride`` 2 both paths first reduce the map with a 3x3 stride-2 conv-norm-LReLU (the conditional one is its
      joint conv), so a 16x16 map ends in an 8x8 logit conv (LDcGAN's D_G, spec §4.5);
    - auxiliary (``n_aux > 0``): ``aux="classifier"``: 3x3 conv-norm-LReLU (``stride``), global average pool, linear
      -> n_aux logits (LDcGAN's age head, AcGAN/StarGAN style); ``aux="regression"``: flatten, linear ``aux_hidden``,
      ReLU, linear -> n_aux values (AVWnet's landmark head, ATVGnet).

    ``forward(h, c, wrong_c)``: ``wrong_c`` (B' <= B rows) is paired with ``h[:B']`` for the mismatched term, e.g.
    ``mismatched_conditions(c)``; the conditional head runs on the matched and the mismatched batch separately, as in
    AttnGAN, so BatchNorm sees each batch on its own."""

    def __init__(self, channels: int, size: int = 4, cond_dim: int = 0, uncond: bool = True, stride: int = 1,
                 n_aux: int = 0, aux: Literal["classifier", "regression"] = "classifier", aux_hidden: int = 512,
                 norm: str = "batch"):
        super().__init__()
        if stride not in (1, 2) or size % stride:
            raise ValueError(f"head stride {stride} on a {size}x{size} map: 1, or 2 on an even map")
        if not uncond and cond_dim <= 0:
            raise ValueError("a JointHead needs the unconditional head, a condition (cond_dim > 0) or both")
        if aux not in ("classifier", "regression"):
            raise ValueError(f"unknown aux head '{aux}' (classifier, regression)")
        self.cond_dim, self.size = cond_dim, size
        k = size // stride

        def head(in_ch: int, joint: bool) -> nn.Sequential:
            pre = [_conv_norm_lrelu(in_ch, channels, 3, stride, norm)] if joint or stride > 1 else []
            return nn.Sequential(*pre, nn.Conv2d(channels, 1, k, k))

        self.uncond = head(channels, joint=False) if uncond else None
        self.cond = head(channels + cond_dim, joint=True) if cond_dim > 0 else None
        self.aux = None
        if n_aux > 0 and aux == "classifier":
            self.aux = nn.Sequential(_conv_norm_lrelu(channels, channels, 3, stride, norm), nn.AdaptiveAvgPool2d(1),
                                     nn.Flatten(), nn.Linear(channels, n_aux))
        elif n_aux > 0:
            self.aux = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, aux_hidden), nn.ReLU(True),
                                     nn.Linear(aux_hidden, n_aux))

    def tile(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``h`` concatenated with the condition tiled over its map (``B x (C + cond_dim) x H x W``)."""
        if c.dim() == 2:
            c = c[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        if c.shape[0] != h.shape[0] or c.shape[1] != self.cond_dim or c.shape[-2:] != h.shape[-2:]:
            raise ValueError(f"condition of shape {tuple(c.shape)} for features {tuple(h.shape)}: expected "
                             f"{h.shape[0]} x {self.cond_dim} (or that tiled to {tuple(h.shape[-2:])})")
        return torch.cat([h, c.to(h.dtype)], 1)

    def forward(self, h: torch.Tensor, c: torch.Tensor | None = None,
                wrong_c: torch.Tensor | None = None) -> JointLogits:
        if (c is not None or wrong_c is not None) and self.cond is None:
            raise ValueError("this discriminator has no conditional head (cond_dim=0)")

        def logit(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
            return net(x).flatten(1).squeeze(1)

        uncond = logit(self.uncond, h) if self.uncond is not None else None
        cond = logit(self.cond, self.tile(h, c)) if c is not None else None
        wrong = logit(self.cond, self.tile(h[:wrong_c.shape[0]], wrong_c)) if wrong_c is not None else None
        aux = self.aux(h) if self.aux is not None else None
        return JointLogits(uncond, cond, wrong, aux, h)


def mismatched_conditions(c: torch.Tensor, shift: int = 1) -> torch.Tensor:
    """AttnGAN's mismatched pairs within a batch: image i with the condition of sample i + shift, so the result,
    ``c[shift:]``, is the ``wrong_c`` of the first B - shift images (thesis Eq. 3.3's (t_i | I^_s^i)). AVWnet's
    mismatched audio (the clip of frame j + 1, Eq. 5.8) is built by the data instead."""
    if not 0 < shift < c.shape[0]:
        raise ValueError(f"shift {shift} needs a batch of more than {shift} samples (got {c.shape[0]})")
    return c[shift:]


def hardest_mismatched_conditions(c: torch.Tensor, key: torch.Tensor, class_id: torch.Tensor) -> torch.Tensor:
    """Hard mismatched pairs within a batch (ours, not AttnGAN's): image i with the condition of the sample whose
    ``key`` (e.g. the sentence embedding) is nearest to its own by cosine among the samples of *another* class, so
    the wrong caption tends to differ in one attribute (the shape, with the colour kept) rather than in all. A row
    whose batch holds no other class takes the next sample's condition. Returns ``B`` rows (one per image)."""
    if c.shape[0] < 2:
        raise ValueError(f"mismatched pairs need a batch of more than 1 sample (got {c.shape[0]})")
    k = F.normalize(key.detach().float().flatten(1), dim=1)
    similarity = k @ k.t()
    same = class_id.view(-1, 1) == class_id.view(1, -1)
    similarity = similarity.masked_fill(same, float("-inf"))
    nearest = similarity.argmax(1)
    fallback = torch.roll(torch.arange(c.shape[0], device=c.device), -1)
    nearest = torch.where(same.all(1), fallback, nearest)
    return c[nearest]


JOINT_D_PRESETS: dict[str, dict] = {
    "hfgan": dict(image_size=256, cond_dim=256, down=(16, 32), refine=(16, 8)),
    "attngan64": dict(image_size=64, cond_dim=256, kernel_size=4, strides=(2, 2, 2, 2), first_norm=False),
    "attngan128": dict(image_size=128, cond_dim=256, kernel_size=4, strides=(2, 2, 2, 2), first_norm=False,
                       down=(16,), refine=(8,)),
    "attngan256": dict(image_size=256, cond_dim=256, kernel_size=4, first_norm=False, down=(16, 32), refine=(16, 8)),
    "ldcgan": dict(image_size=128, cond_dim=10, head_stride=2, n_aux=10),
    "avwnet_d0": dict(image_size=64, cond_dim=128, down=(16, 16), refine=(16,), n_aux=136, aux="regression"),
    "avwnet_d1": dict(image_size=128, cond_dim=128, down=(16, 16), refine=(16,), n_aux=136, aux="regression"),
}


class JointDiscriminator(nn.Module):
    """A :class:`JointTrunk` and a :class:`JointHead` (the configurations of the thesis methods are in the table
    above and in ``JOINT_D_PRESETS``). ``forward(x, c=None, wrong_c=None)`` returns :class:`JointLogits`::

        real = d(x_real, c, wrong_c=mismatched_conditions(c))
        fake = d(x_fake.detach(), c)
        loss_d = joint_d_loss(real.uncond, fake.uncond, real.cond, fake.cond, real.wrong)
    """

    def __init__(self, in_channels: int = 3, image_size: int = 128, ndf: int = 64, cond_dim: int = 0, *,
                 uncond: bool = True, n_aux: int = 0, aux: Literal["classifier", "regression"] = "classifier",
                 aux_hidden: int = 512, kernel_size: int = 3, strides: tuple[int, ...] | None = None,
                 first_norm: bool = True, down: tuple[int, ...] = (), refine: tuple[int, ...] = (),
                 head_stride: int = 1, norm: str = "batch"):
        super().__init__()
        self.trunk = JointTrunk(in_channels, image_size, ndf, kernel_size, strides, first_norm, down, refine, norm)
        self.head = JointHead(self.trunk.out_channels, self.trunk.out_size, cond_dim, uncond, head_stride, n_aux, aux,
                              aux_hidden, norm)

    @classmethod
    def preset(cls, name: str, **overrides) -> "JointDiscriminator":
        """The discriminator of a thesis method (``JOINT_D_PRESETS``), e.g. ``preset("ldcgan", ndf=32)``."""
        if name not in JOINT_D_PRESETS:
            raise ValueError(f"unknown joint discriminator preset '{name}' ({', '.join(JOINT_D_PRESETS)})")
        return cls(**{**JOINT_D_PRESETS[name], **overrides})

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None,
                wrong_c: torch.Tensor | None = None) -> JointLogits:
        return self.head(self.trunk(x), c, wrong_c)


# ==================================================================================================================
# LearningToPaint's reward critic (the painting agent's WGAN reward)
# ==================================================================================================================


class LTPCritic(nn.Module):
    """LearningToPaint's reward discriminator D(I, C): the target and the canvas stacked into 6
    channels, 5 weight-normalised 5x5 stride-2 convs 6-16-32-64-128-1 with TReLU between them, the
    score map averaged to one number per pair. Its WGAN-GP training is the painting agent's
    (``losses.gan.gradient_penalty`` on the 6-channel pair)."""

    def __init__(self):
        super().__init__()
        ch = [6, 16, 32, 64, 128]
        layers = []
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [weight_norm(nn.Conv2d(a, b, 5, 2, 2)), TReLU()]
        layers.append(weight_norm(nn.Conv2d(128, 1, 5, 2, 2)))
        self.net = nn.Sequential(*layers)

    def forward(self, target: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.net(torch.cat([target, canvas], 1)), 1).flatten(1).squeeze(1)

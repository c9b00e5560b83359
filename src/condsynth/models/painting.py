"""Attention-aware neural painting with model-based deep RL (thesis Ch. 6).

The file follows the chapter's method section, top to bottom:

1. **Strokes** (Sec. 6.3.2): a quadratic Bezier stroke with 13 parameters in the thesis order
   ``(x0, y0, x1, y1, x2, y2, z0, v0, z1, v1, r, g, b)``; a CPU rasteriser that is the ground
   truth, and the neural renderer H_r (FC layers, convolutions, pixel shuffle, 128x128 alpha).
2. **Environment** (Sec. 6.3.2): batched canvases, 5-stroke action bundles, the compositing
   C(t+1) = a_c + (1 - a_r) * C(t).
3. **Attention module** (Sec. 6.3.3.1): mask branch x feature branch -> foreground-focused
   canvas, trained with Eq. 6.3.
4. **Feature masks and rewards** (Sec. 6.3.3.2): Eq. 6.4-6.8, and LearningToPaint's WGAN
   reward as the baseline.
5. **Actor and critic** (model-based DDPG, Sec. 6.3.2 / Eq. 6.9), and the training step.

Every choice the thesis leaves open is a field of :class:`PaintingAgentConfig` or
:class:`RendererConfig`; docs/painting.md lists each deviation and the option that controls it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from condsynth.models.base import Method

# =============================================================================================
# 1. Strokes
# =============================================================================================

STROKE_PARAMS = 13        # x0 y0 x1 y1 x2 y2 z0 v0 z1 v1 r g b   (thesis order, 1-based 7 and 9 = thickness)
SHAPE_PARAMS = 10         # the first ten: what the renderer sees
THICKNESS_INDEX = (6, 8)  # 0-based z0, z1
ALPHA_INDEX = (7, 9)      # 0-based v0, v1
N_DISCS = 100             # discs stamped along the curve (tau = i / 100)

_DISC_CACHE: dict[int, np.ndarray] = {}


def _disc(radius: int) -> np.ndarray:
    """Boolean (2r+1)^2 stencil of a filled disc of integer radius ``r``."""
    d = _DISC_CACHE.get(radius)
    if d is None:
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        d = (xx * xx + yy * yy) <= radius * radius
        _DISC_CACHE[radius] = d
    return d


def rasterize_stroke(p, size: int = 128, relative_p1: bool = False) -> np.ndarray:
    """Ground-truth alpha of one stroke (Sec. 6.3.2: "Q(t) ... serves as ground truth").

    ``p`` holds the ten shape parameters in the thesis order. The stroke is drawn on a canvas of
    twice the size (256 for 128) as ``N_DISCS`` filled discs along the Bezier curve
    Q(tau) = (1-tau)^2 P0 + 2 (1-tau) tau P1 + tau^2 P2; the radius goes from 1 + (2*size/4) z0 to
    1 + (2*size/4) z1 and the value from v0 to v1, later discs overwriting earlier ones. It is
    then reduced 2x by averaging 2x2 blocks (what bilinear resizing by exactly one half does).
    ``relative_p1`` places P1 relative to P0 and P2 as LearningToPaint's code does.
    """
    x0, y0, x1, y1, x2, y2, z0, v0, z1, v1 = [float(v) for v in p[:SHAPE_PARAMS]]
    if relative_p1:
        x1 = x0 + (x2 - x0) * x1
        y1 = y0 + (y2 - y0) * y1
    big = 2 * size
    scale = big - 1
    x0, y0, x1, y1, x2, y2 = (int(v * scale + 0.5) for v in (x0, y0, x1, y1, x2, y2))
    r0, r1 = 1.0 + big / 4 * z0, 1.0 + big / 4 * z1
    canvas = np.zeros((big, big), np.float32)
    for i in range(N_DISCS):
        t = i / N_DISCS
        cx = int((1 - t) ** 2 * x0 + 2 * t * (1 - t) * x1 + t * t * x2)   # column (x)
        cy = int((1 - t) ** 2 * y0 + 2 * t * (1 - t) * y1 + t * t * y2)   # row (y)
        r = int((1 - t) * r0 + t * r1)
        v = (1 - t) * v0 + t * v1
        disc = _disc(r)
        ya, yb, xa, xb = cy - r, cy + r + 1, cx - r, cx + r + 1
        ca, cb, da, db = max(ya, 0), min(yb, big), max(xa, 0), min(xb, big)
        if ca >= cb or da >= db:
            continue
        sub = disc[ca - ya:cb - ya, da - xa:db - xa]
        canvas[ca:cb, da:db][sub] = v
    return canvas.reshape(size, 2, size, 2).mean(axis=(1, 3))


def rasterize_strokes(params, size: int = 128, relative_p1: bool = False) -> np.ndarray:
    """``N x >=10`` parameters -> ``N x size x size`` float32 alpha maps."""
    params = np.asarray(params, dtype=np.float64).reshape(-1, np.shape(params)[-1])
    return np.stack([rasterize_stroke(p, size, relative_p1) for p in params]) if len(params) \
        else np.zeros((0, size, size), np.float32)


def paint_strokes_cpu(strokes, canvas=None, size: int = 128, relative_p1: bool = False) -> np.ndarray:
    """Composite ``N x 13`` strokes onto an ``H x W x 3`` canvas in [0, 1] with the rasteriser."""
    canvas = np.zeros((size, size, 3), np.float32) if canvas is None else np.array(canvas, np.float32)
    for s in np.asarray(strokes, np.float64).reshape(-1, STROKE_PARAMS):
        a = rasterize_stroke(s[:SHAPE_PARAMS], size, relative_p1)[..., None]
        canvas = a * s[10:13].astype(np.float32) + (1.0 - a) * canvas
    return canvas


# ---------------------------------------------------------------------------------- renderer

@dataclass
class RendererConfig:
    """Neural renderer H_r. The thesis uses LearningToPaint's renderer (FC 10-512-1024-2048-4096,
    16x16x16 -> pixel-shuffled convs -> 128^2). ``fc`` and ``conv`` widths are options; the bundled
    renderer uses a narrower net (docs/painting.md, "deviations")."""

    size: int = 128
    fc: list[int] = field(default_factory=lambda: [512, 1024, 2048, 4096])
    base_channels: int = 16          # channels of the 16x16 map the last FC layer is reshaped to
    conv_widths: list[int] = field(default_factory=lambda: [32, 16, 8])   # hidden width per 2x stage
    relative_p1: bool = False        # LTP's relative middle control point (rasteriser option)
    lr: float = 1e-4                 # Adam; LTP: 1e-4, then 1e-5 and 1e-6 (train.schedule kind=step)
    # Training loss. "mse" is LTP's. "bce" (binary cross-entropy on the logits, the alpha map as a
    # soft target) does not saturate with the sigmoid and sharpened edges ~20% faster per step in a
    # CPU comparison (docs/painting.md); evaluation is MSE either way.
    loss: Literal["mse", "bce"] = "mse"


@dataclass
class RendererDataConfig:
    length: int = 100_000            # strokes per "epoch"; item i is drawn from seed (seed, i)
    seed: int = 0
    heldout_seed: int = 1
    # A stroke bank written by `condsynth data strokes` (the first N items of the same (seed, i)
    # stream, rasterised once). Training then reads it instead of rasterising on the fly, which
    # frees the CPU core a data worker would need. None: rasterise on the fly.
    bank: Optional[str] = None


class NeuralRenderer(nn.Module):
    """H_r: 10 shape parameters -> 128x128 alpha in [0, 1] (sigmoid output, no inversion)."""

    def __init__(self, cfg: RendererConfig):
        super().__init__()
        self.cfg = cfg
        stages = int(round(math.log2(cfg.size / 16)))
        if 16 * 2 ** stages != cfg.size:
            raise ValueError("renderer size must be 16 * 2^k")
        dims = [SHAPE_PARAMS] + list(cfg.fc)
        if dims[-1] != cfg.base_channels * 256:
            raise ValueError(f"last fc width must be base_channels*256 = {cfg.base_channels * 256}")
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        widths = list(cfg.conv_widths) + [cfg.conv_widths[-1]] * max(0, stages - len(cfg.conv_widths))
        convs = []
        c = cfg.base_channels
        for s in range(stages):
            w = widths[s]
            out = 4 if s == stages - 1 else 4 * max(c // 2, 1)   # pixel shuffle(2) divides by 4
            convs += [nn.Conv2d(c, w, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(w, out, 3, 1, 1),
                      nn.PixelShuffle(2)]
            c = out // 4
        self.conv = nn.Sequential(*convs)

    def logits(self, p: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid alpha, ``N x H x W``."""
        x = p[..., :SHAPE_PARAMS].reshape(-1, SHAPE_PARAMS)
        for lin in self.fc:
            x = F.relu(lin(x))
        # channels_last: the few-channel convolutions run 2-3x faster on CPU in this layout
        x = x.view(-1, self.cfg.base_channels, 16, 16).contiguous(memory_format=torch.channels_last)
        return self.conv(x).squeeze(1)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(p))


def build_renderer(cfg: RendererConfig) -> nn.Module:
    return NeuralRenderer(cfg)


class StrokeDataset(torch.utils.data.Dataset):
    """Random strokes, item ``i`` drawn deterministically from ``(seed, i)``: (params, alpha)."""

    def __init__(self, length: int, seed: int, size: int = 128, relative_p1: bool = False):
        self.length, self.seed, self.size, self.relative_p1 = length, seed, size, relative_p1

    def __len__(self):
        return self.length

    def params(self, index: int) -> np.ndarray:
        return np.random.default_rng([self.seed, index]).random(SHAPE_PARAMS).astype(np.float32)

    def __getitem__(self, index):
        index = int(index[0]) if isinstance(index, (tuple, list)) else int(index)   # engine: (index, seed)
        p = self.params(index)
        return torch.from_numpy(p), torch.from_numpy(rasterize_stroke(p, self.size, self.relative_p1))


class StrokeBank(torch.utils.data.Dataset):
    """Pre-rasterised strokes from ``condsynth data strokes``: (params, alpha), like :class:`StrokeDataset`.

    The file is safetensors: ``params`` (N x 10 float32) and ``alpha`` (N x S x S uint8, alpha * 255
    rounded), with ``seed``, ``size`` and ``relative_p1`` in its metadata. Quantising alpha to 8
    bits costs at most (0.5/255)^2 = 4e-6 MSE, far below the renderer's error.
    """

    def __init__(self, path: str, size: int = 128, relative_p1: bool = False):
        from safetensors import SafetensorError, safe_open

        from condsynth.errors import ConfigError
        if not Path(path).is_file():
            raise ConfigError(f"{path}: stroke bank not found (write it with `condsynth data strokes "
                              f"--out {path} --n N`)")
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                self.params, self.alpha = f.get_tensor("params"), f.get_tensor("alpha")
        except (SafetensorError, OSError, KeyError) as exc:
            raise ConfigError(f"{path}: not a stroke bank ({exc})") from None
        if meta.get("size") != str(size) or (meta.get("relative_p1") == "true") != relative_p1:
            raise ConfigError(f"{path}: strokes of size {meta.get('size')} relative_p1="
                              f"{meta.get('relative_p1')}, the renderer wants {size} / {relative_p1}")
        if self.alpha.dtype != torch.uint8 or self.params.shape[0] != self.alpha.shape[0]:
            raise ConfigError(f"{path}: malformed stroke bank (params/alpha shapes or dtype)")

    def __len__(self):
        return self.params.shape[0]

    def __getitem__(self, index):
        index = int(index[0]) if isinstance(index, (tuple, list)) else int(index)
        return self.params[index], self.alpha[index].float() / 255.0


def _bank_chunk(args):
    seed, start, stop, size, relative_p1 = args
    ds = StrokeDataset(stop, seed, size, relative_p1)
    params = np.stack([ds.params(i) for i in range(start, stop)])
    alpha = np.stack([np.round(rasterize_stroke(q, size, relative_p1) * 255).astype(np.uint8) for q in params])
    return params, alpha


def write_stroke_bank(out, n: int, seed: int = 0, size: int = 128, relative_p1: bool = False,
                      workers: int = 1) -> dict:
    """Rasterise items ``0..n-1`` of the ``(seed, i)`` stroke stream into a safetensors bank (atomic)."""
    from concurrent.futures import ProcessPoolExecutor

    from condsynth.io.state import save_tensors
    chunk = 2000
    jobs = [(seed, a, min(a + chunk, n), size, relative_p1) for a in range(0, n, chunk)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_bank_chunk, jobs))
    else:
        parts = [_bank_chunk(j) for j in jobs]
    params = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, SHAPE_PARAMS), np.float32)
    alpha = np.concatenate([a for _, a in parts]) if parts else np.zeros((0, size, size), np.uint8)
    meta = {"format": "condsynth-stroke-bank-1", "seed": str(seed), "size": str(size),
            "relative_p1": "true" if relative_p1 else "false", "n": str(n)}
    save_tensors(out, {"params": torch.from_numpy(params), "alpha": torch.from_numpy(alpha)}, metadata=meta)
    return meta


class RendererMethod(Method):
    """Trains H_r by MSE against the rasteriser on strokes generated on the fly (LTP recipe)."""

    name = "painting_renderer"
    ModelConfig = RendererConfig
    DataConfig = RendererDataConfig
    inference_network = "renderer"

    def __init__(self, model_cfg: RendererConfig, data_cfg: RendererDataConfig):
        super().__init__(model_cfg, data_cfg)
        self.renderer = build_renderer(model_cfg)

    def networks(self):
        return {"renderer": self.renderer}

    def configure_optimizers(self, train_cfg):
        return {"renderer": torch.optim.Adam(self.renderer.parameters(), lr=self.model_cfg.lr, foreach=True)}

    def build_dataset(self, split: str):
        if split == "train" and self.data_cfg.bank:
            return StrokeBank(self.data_cfg.bank, self.model_cfg.size, self.model_cfg.relative_p1)
        seed = self.data_cfg.seed if split == "train" else self.data_cfg.heldout_seed
        length = self.data_cfg.length if split == "train" else 2048
        return StrokeDataset(length, seed, self.model_cfg.size, self.model_cfg.relative_p1)

    def training_step(self, batch, ctx):
        p, alpha = (t.to(ctx.device) for t in batch)
        with ctx.autocast():
            logits = ctx.nets["renderer"].logits(p)
        logits = logits.float()
        mse = F.mse_loss(torch.sigmoid(logits), alpha)
        if self.model_cfg.loss == "bce":
            loss = F.binary_cross_entropy_with_logits(logits, alpha)
        else:
            loss = mse                                   # LTP: MSE against the rasteriser
        ctx.backward(loss)
        ctx.step("renderer")
        return {"loss": loss.detach(), "loss_mse": mse.detach()}

    @torch.no_grad()
    def evaluate(self, batch):
        p, alpha = batch
        dev = next(self.renderer.parameters()).device
        return {"mse": float(F.mse_loss(self.renderer(p.to(dev)), alpha.to(dev)))}

    @torch.no_grad()
    def visuals(self, batch):
        p, alpha = batch
        dev = next(self.renderer.parameters()).device
        pred = self.renderer(p[:8].to(dev)).cpu()
        return {"rasteriser": alpha[:8, None] * 2 - 1, "renderer": pred[:, None] * 2 - 1}


def load_renderer(path: str, device="cpu") -> NeuralRenderer:
    """Load a renderer from a checkpoint (folder, run folder or its model.safetensors; keys ``renderer.*``)."""
    from condsynth.config import from_dict
    from condsynth.io.checkpoint import load_module_weights, open_checkpoint, subdict

    folder, meta, weights = open_checkpoint(path, expected_method=RendererMethod.name)
    net = build_renderer(from_dict(RendererConfig, meta["config"].get("model", {}), prefix="model."))
    load_module_weights(net, subdict(weights, "renderer."), str(folder / "model.safetensors"))
    return net.to(device).eval().requires_grad_(False)


# =============================================================================================
# 2. Environment: batched canvases, 5-stroke bundles, C(t+1) = a_c + (1 - a_r) * C(t)
# =============================================================================================

def render_bundle(renderer: nn.Module, actions: torch.Tensor, k: int):
    """Actions ``B x (k*13)`` -> alpha ``B x k x 1 x H x W`` and premultiplied colour strokes a_c."""
    b = actions.shape[0]
    a = actions.reshape(b * k, STROKE_PARAMS)
    alpha = renderer(a[:, :SHAPE_PARAMS])                         # a_r, B*k x H x W
    h, w = alpha.shape[-2:]
    alpha = alpha.view(b, k, 1, h, w)
    color = a[:, SHAPE_PARAMS:].view(b, k, 3, 1, 1)
    return alpha, alpha * color                                   # a_r, a_c = a_r * (r, g, b)


def composite(canvas: torch.Tensor, alpha: torch.Tensor, color_stroke: torch.Tensor) -> torch.Tensor:
    """Sec. 6.3.2: C(t+1) = a_c + (1 - a_r) * C(t), applied to the k strokes of a bundle in order."""
    for j in range(alpha.shape[1]):
        canvas = color_stroke[:, j] + (1.0 - alpha[:, j]) * canvas
    return canvas


def step_canvas(renderer, canvas, actions, k: int = 5):
    """Transition T(s, a): the new canvas and the stroke tensors (for the focus reward)."""
    alpha, cs = render_bundle(renderer, actions, k)
    return composite(canvas, alpha, cs), alpha, cs


def coord_planes(size: int, device=None) -> torch.Tensor:
    """CoordConv planes (i/(S-1), j/(S-1)), ``1 x 2 x S x S``."""
    r = torch.linspace(0, 1, size, device=device)
    return torch.stack(torch.meshgrid(r, r, indexing="ij"))[None]


# =============================================================================================
# 3. Attention module (Sec. 6.3.3.1)
# =============================================================================================

class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.body(x))


class AttentionModule(nn.Module):
    """Dual-branch attention: C_focus = H_c(f_attn * alpha * f_f)   (Sec. 6.3.3.1).

    * mask branch: a U-Net (encoder-decoder with skips) -> f_attn, 1 x 64 x 64, sigmoid;
    * feature branch: conv + BN + ReLU and residual blocks that keep the canvas's spatial detail;
    * H_c: two convolutions -> the foreground-focused canvas, 3 x 64 x 64 in [0, 1].

    The thesis initialises the U-Net with ResNet-34 layers; without ImageNet weights here the
    U-Net encoder is a plain conv encoder of width ``unet_width`` (docs/painting.md).
    """

    def __init__(self, width: int = 64, unet_width: int = 32, n_res: int = 4, size: int = 64):
        super().__init__()
        self.size = size
        u = unet_width

        def cbr(i, o, s=1):
            return nn.Sequential(nn.Conv2d(i, o, 3, s, 1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        self.e1, self.e2, self.e3 = cbr(3, u), cbr(u, 2 * u, 2), cbr(2 * u, 4 * u, 2)
        self.mid = cbr(4 * u, 4 * u)
        self.d2 = cbr(4 * u + 2 * u, 2 * u)
        self.d1 = cbr(2 * u + u, u)
        self.attn_out = nn.Conv2d(u, 1, 1)
        self.feat = nn.Sequential(cbr(3, width), *[ResBlock(width) for _ in range(n_res)])
        self.alpha = nn.Parameter(torch.ones(()))
        self.h_c = nn.Sequential(nn.Conv2d(width, 32, 3, 1, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(32, 3, 3, 1, 1))

    def forward(self, canvas: torch.Tensor, return_mask: bool = False):
        x = F.interpolate(canvas, size=(self.size, self.size), mode="bilinear", align_corners=False,
                          antialias=True) if canvas.shape[-1] != self.size else canvas
        e1 = self.e1(x)
        e2 = self.e2(e1)
        m = self.mid(self.e3(e2))
        d2 = self.d2(torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), e2], 1))
        d1 = self.d1(torch.cat([F.interpolate(d2, scale_factor=2, mode="nearest"), e1], 1))
        f_attn = torch.sigmoid(self.attn_out(d1))
        f_f = self.feat(x)
        focus = torch.sigmoid(self.h_c(f_attn * self.alpha * f_f))
        return (focus, f_attn) if return_mask else focus


def down(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def attention_loss(att: AttentionModule, canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 6.3: L_rec = MSE( C_focus(t), C(t) * M ) at 64x64, M the ground-truth foreground mask."""
    s = att.size
    return F.mse_loss(att(canvas), down(canvas, s) * down(mask, s))


# =============================================================================================
# 4. Feature masks and rewards (Sec. 6.3.3.2)
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
    """

    def __init__(self, kind: str = "vgg", vgg_weights: Optional[str] = None, vgg_perceptual: bool = True):
        super().__init__()
        self.kind = kind
        self.vgg = None
        if kind == "vgg" or vgg_perceptual:
            from condsynth.nn.vgg import vgg16_features
            # torchvision indices: 3 = relu1_2 (after conv1_2 = "layer 2"), 18 = relu4_1 (after
            # conv4_1 = "layer 17"), 8 = relu2_2 and 15 = relu3_3 for L_vgg. Pretrained only.
            self.vgg = vgg16_features(taps=(3, 8, 15, 18), pretrained=True, weights_path=vgg_weights,
                                      input_range=(0.0, 1.0))

    @torch.no_grad()
    def masks(self, image: torch.Tensor, mask: Optional[torch.Tensor] = None, size: int = 128,
              focus_size: int = 64):
        """-> (f^17_mask at size, f^2_mask at focus_size), each ``B x 1 x S x S``."""
        b = image.shape[0]
        if self.kind == "vgg":
            outs = self.vgg(image)
            m17 = outs["18"].mean(1, keepdim=True)
            m2 = outs["3"].mean(1, keepdim=True)
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
        m17 = _minmax(F.interpolate(m17, size=(size, size), mode="bilinear", align_corners=False))
        m2 = _minmax(F.interpolate(m2, size=(focus_size, focus_size), mode="bilinear", align_corners=False,
                                   antialias=m2.shape[-1] > focus_size))
        return m17, m2

    def perceptual(self, canvas: torch.Tensor, target_feats: list) -> torch.Tensor:
        """L_vgg: mean squared difference at relu2_2 and relu3_3 (features indices 8, 15), averaged."""
        outs = self.vgg(canvas)
        return 0.5 * ((outs["8"] - target_feats[0]).pow(2).flatten(1).mean(1)
                      + (outs["15"] - target_feats[1]).pow(2).flatten(1).mean(1))

    @torch.no_grad()
    def perceptual_targets(self, image: torch.Tensor) -> list:
        outs = self.vgg(image)
        return [outs["8"], outs["15"]]


def masked_l1(canvas, target, fmask, lam: float) -> torch.Tensor:
    """First term of Eq. 6.4: mean( min(|C - I|, lambda) * f^17_mask ), per image."""
    return (torch.clamp((canvas - target).abs(), max=lam) * fmask).flatten(1).mean(1)


def focus_loss(blend, focus_next, fmask2, lam: float) -> torch.Tensor:
    """Eq. 6.6: L_focus(t) = mean( min(|B_t - F_{t+1}|, lambda) * f^2_mask ), per image."""
    return (torch.clamp((blend - focus_next).abs(), max=lam) * fmask2).flatten(1).mean(1)


# ------------------------------------------------------------------- LTP's WGAN reward (baseline)

class TReLU(nn.Module):
    """ReLU(x - a) + a with a learnable threshold a (initialised to 0)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return F.relu(x - self.alpha) + self.alpha


class WGANDiscriminator(nn.Module):
    """LTP's reward discriminator: 5 weight-normalised 5x5 stride-2 convs 6-16-32-64-128-1, TReLU."""

    def __init__(self):
        super().__init__()
        wn = nn.utils.parametrizations.weight_norm
        ch = [6, 16, 32, 64, 128]
        layers = []
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [wn(nn.Conv2d(a, b, 5, 2, 2)), TReLU()]
        layers.append(wn(nn.Conv2d(128, 1, 5, 2, 2)))
        self.net = nn.Sequential(*layers)

    def net_forward(self, x):
        return F.adaptive_avg_pool2d(self.net(x), 1).flatten(1).squeeze(1)

    def forward(self, target, canvas):
        return self.net_forward(torch.cat([target, canvas], 1))


# =============================================================================================
# 5. Actor and critic (model-based DDPG, Eq. 6.9)
# =============================================================================================

class BasicBlock(nn.Module):
    def __init__(self, i, o, stride, norm: bool):
        super().__init__()
        wn = (lambda m: m) if norm else nn.utils.parametrizations.weight_norm
        self.c1 = wn(nn.Conv2d(i, o, 3, stride, 1, bias=not norm))
        self.c2 = wn(nn.Conv2d(o, o, 3, 1, 1, bias=not norm))
        self.b1 = nn.BatchNorm2d(o) if norm else nn.Identity()
        self.b2 = nn.BatchNorm2d(o) if norm else nn.Identity()
        self.a1 = nn.ReLU() if norm else TReLU()
        self.a2 = nn.ReLU() if norm else TReLU()
        self.short = nn.Identity()
        if stride != 1 or i != o:
            self.short = nn.Sequential(wn(nn.Conv2d(i, o, 1, stride, bias=not norm)),
                                       nn.BatchNorm2d(o) if norm else nn.Identity())

    def forward(self, x):
        y = self.a1(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return self.a2(y + self.short(x))


class ResNet18(nn.Module):
    """LTP's ResNet-18 variant: conv3x3 s2 -> 4 stages of 2 BasicBlocks, each stride 2 -> 4x4 avg
    pool -> FC. ``norm=True``: BatchNorm + ReLU (actor). ``norm=False``: weight norm, biases and
    TReLU (critic). ``width`` is the first stage's channels (64 in the paper)."""

    def __init__(self, in_ch: int, out: int, width: int = 64, norm: bool = True):
        super().__init__()
        wn = (lambda m: m) if norm else nn.utils.parametrizations.weight_norm
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(wn(nn.Conv2d(in_ch, w[0], 3, 2, 1, bias=not norm)),
                                  nn.BatchNorm2d(w[0]) if norm else nn.Identity(),
                                  nn.ReLU() if norm else TReLU())
        blocks, c = [], w[0]
        for o in w:
            blocks += [BasicBlock(c, o, 2, norm), BasicBlock(o, o, 1, norm)]
            c = o
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, out)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# =============================================================================================
# 6. The method: model-based DDPG with the attention module and the thesis's rewards
# =============================================================================================

@dataclass
class PaintingAgentConfig:
    # environment
    size: int = 128                     # canvas (Sec. 6.4.1)
    focus_size: int = 64                # attention / focus-reward resolution
    bundle: int = 5                     # k strokes per action
    max_step: int = 80                  # T_max: 80 steps = 400 strokes (LTP CelebA default: 40)
    renderer: str = "condsynth/assets/painting/renderer"   # checkpoint folder, or package asset
    # networks
    attention: bool = True              # attention module + focused canvas in the actor's input
    actor_width: int = 64               # ResNet-18 first-stage width (paper: 64)
    critic_width: int = 64
    net_input_size: int = 128           # actor/critic input resolution (paper: 128)
    attention_width: int = 64
    attention_unet_width: int = 32
    attention_res_blocks: int = 4
    feature_mask_input: bool = True     # f^17_mask as an actor/critic input channel
    # rewards  R = sigma R_m + eta R_focus   (Eq. 6.8)
    reward: Literal["thesis", "wgan", "l2"] = "thesis"   # wgan: LearningToPaint's baseline reward
    feature_mask: Literal["vgg", "saliency", "ground_truth", "none"] = "vgg"
    vgg_weights: Optional[str] = None
    vgg_weight: float = 1.0             # weight of L_vgg inside L_m (0 disables, no VGG needed)
    use_focus_reward: bool = True
    focus_reward: Literal["neg", "fg_improve"] = "neg"   # Eq. 6.7, see reward()
    sigma: float = 2.0
    eta: float = 1.0
    trunc_lambda: float = 1.0           # lambda of the truncated L1
    reward_scale: float = 1.0           # multiplies R (LTP's L2 reward is O(1e-3) per step too)
    # DDPG (LTP's values)
    gamma: float = 0.95 ** 5
    tau: float = 0.001
    actor_lr: float = 1e-3
    critic_lr: float = 3e-4
    attention_lr: float = 2e-4
    gan_lr: float = 3e-4
    replay_capacity: int = 64_000       # 800 x max_step
    batch_size: int = 96
    warmup: int = 400                   # env steps (of the whole batch of envs) before updates
    updates_per_step: float = 0.25      # LTP: 10 updates per 40-step episode
    noise_std: float = 0.0              # LTP: no exploration noise
    joint_attention: bool = True        # thesis: attention module and actor optimised jointly
                                        # (the actor's loss also trains the attention module
                                        # through the focused canvas); false: L_rec only (spec [R])


class ReplayBuffer:
    """Transitions with uint8 canvases and an episode-target slot (not checkpointed)."""

    def __init__(self, capacity: int, size: int, k: int):
        self.capacity = capacity
        self.c0 = torch.zeros(capacity, 3, size, size, dtype=torch.uint8)
        self.act = torch.zeros(capacity, k * STROKE_PARAMS)
        self.t = torch.zeros(capacity, dtype=torch.long)
        self.slot = torch.zeros(capacity, dtype=torch.long)
        self.n = self.ptr = 0

    def add(self, c0, act, t, slot):
        b = c0.shape[0]
        idx = (torch.arange(b) + self.ptr) % self.capacity
        self.c0[idx] = (c0.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        self.act[idx] = act.detach().cpu()
        self.t[idx] = t
        self.slot[idx] = slot.cpu()
        self.ptr = (self.ptr + b) % self.capacity
        self.n = min(self.n + b, self.capacity)

    def sample(self, b: int, gen=None):
        idx = torch.randint(0, self.n, (b,), generator=gen)
        return self.c0[idx].float() / 255.0, self.act[idx], self.t[idx], self.slot[idx]


class TargetStore:
    """Episode targets, their masks and cached feature masks, by slot (a ring of episodes)."""

    def __init__(self, slots: int):
        self.slots = slots
        self.data: dict[int, tuple] = {}

    def put(self, slot_ids, *tensors):
        for i, s in enumerate(slot_ids.tolist()):
            self.data[s % self.slots] = tuple(t[i].detach().cpu() for t in tensors)

    def get(self, slot_ids, device):
        rows = [self.data[s % self.slots] for s in slot_ids.tolist()]
        return [torch.stack(col).to(device) for col in zip(*rows)]


class PaintingAgent(Method):
    name = "painting_agent"
    ModelConfig = PaintingAgentConfig
    from condsynth.data.painting import PaintingDataConfig as DataConfig  # noqa: N814
    inference_network = "actor"

    def __init__(self, model_cfg: PaintingAgentConfig, data_cfg, for_inference: bool = False):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        self.renderer = load_renderer(resolve_asset(c.renderer))
        self.renderer.requires_grad_(False)
        from condsynth.errors import ConfigError
        if self.renderer.cfg.size != c.size:
            raise ConfigError(f"model.size is {c.size} but the renderer {c.renderer} draws "
                              f"{self.renderer.cfg.size}x{self.renderer.cfg.size} strokes")
        if getattr(data_cfg, "size", c.size) != c.size:
            raise ConfigError(f"data.size ({data_cfg.size}) must equal model.size ({c.size})")
        self.masks = FeatureMasks(c.feature_mask if c.reward != "wgan" else "none", c.vgg_weights,
                                  vgg_perceptual=(c.reward == "thesis" and c.vgg_weight > 0 and not for_inference))
        self.actor = ResNet18(self.actor_channels(), c.bundle * STROKE_PARAMS, c.actor_width, norm=True)
        self.critic = ResNet18(self.critic_channels(), 1, c.critic_width, norm=False)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.attention = AttentionModule(c.attention_width, c.attention_unet_width, c.attention_res_blocks,
                                         size=c.focus_size) \
            if c.attention else None
        self.disc = WGANDiscriminator() if c.reward == "wgan" else None
        self.disc_target = copy.deepcopy(self.disc).requires_grad_(False) if self.disc is not None else None
        self.register_buffer("coords", coord_planes(c.net_input_size))
        # environment and replay state: lives here, not in checkpoints
        self.replay = None
        self.env = None
        self.updates_credit = 0.0
        self.env_steps = 0
        self.episodes = 0

    # ---- shapes of the state
    def actor_channels(self) -> int:
        c = self.model_cfg
        n = 9                                   # C_t, I, t/T, coords (LTP)
        if c.attention:
            n += 3                              # up(F_t)
        if c.feature_mask_input and c.reward != "wgan":
            n += 1                              # f^17_mask
        return n

    def critic_channels(self) -> int:
        c = self.model_cfg
        return 12 + (1 if c.feature_mask_input and c.reward != "wgan" else 0)

    def networks(self):
        nets = {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "renderer": self.renderer}
        if self.attention is not None:
            nets["attention"] = self.attention
        if self.disc is not None:
            nets["disc"] = self.disc
            nets["disc_target"] = self.disc_target
        return nets

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        opts = {"actor": torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr),
                "critic": torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr)}
        if self.attention is not None:
            opts["attention"] = torch.optim.Adam(self.attention.parameters(), lr=c.attention_lr)
        if self.disc is not None:
            opts["disc"] = torch.optim.Adam(self.disc.parameters(), lr=c.gan_lr, betas=(0.5, 0.999))
        return opts

    def build_dataset(self, split: str):
        from condsynth.data.painting import build_painting_dataset
        return build_painting_dataset(self.data_cfg, split)

    # ---- state tensors
    def _resize(self, x):
        s = self.model_cfg.net_input_size
        return x if x.shape[-1] == s else F.interpolate(x, size=(s, s), mode="bilinear",
                                                         align_corners=False, antialias=True)

    def focus(self, canvas, grad: bool = False):
        if self.attention is None:
            return None
        if grad and self.model_cfg.joint_attention:
            return self.attention(canvas)
        with torch.no_grad():
            was = self.attention.training
            self.attention.eval()
            f = self.attention(canvas)
            self.attention.train(was)
        return f

    def actor_input(self, canvas, target, fm17, tfrac, focus=None):
        c = self.model_cfg
        b = canvas.shape[0]
        parts = [canvas, target]
        if c.feature_mask_input and c.reward != "wgan":
            parts.append(fm17)
        if c.attention:
            parts.append(F.interpolate(focus, size=canvas.shape[-2:], mode="bilinear", align_corners=False))
        x = self._resize(torch.cat(parts, 1))
        s = x.shape[-1]
        t = tfrac.view(b, 1, 1, 1).expand(b, 1, s, s)
        return torch.cat([x, t, self.coords.expand(b, -1, -1, -1)], 1)

    def critic_input(self, c0, c1, target, fm17, tfrac):
        c = self.model_cfg
        b = c0.shape[0]
        parts = [c0, c1, target]
        if c.feature_mask_input and c.reward != "wgan":
            parts.append(fm17)
        x = self._resize(torch.cat(parts, 1))
        s = x.shape[-1]
        return torch.cat([x, tfrac.view(b, 1, 1, 1).expand(b, 1, s, s), self.coords.expand(b, -1, -1, -1)], 1)

    def act(self, actor, canvas, target, fm17, t, max_step=None, focus=None):
        tfrac = torch.as_tensor(t, dtype=canvas.dtype, device=canvas.device).expand(canvas.shape[0]) \
            / float(max_step or self.model_cfg.max_step)
        if focus is None:
            focus = self.focus(canvas)
        return torch.sigmoid(actor(self.actor_input(canvas, target, fm17, tfrac, focus)))

    # ---- rewards (Eq. 6.4-6.8), computed inside the graph
    def _focus_grad(self, canvas):
        """F = Att(canvas) with gradients to the canvas only (module frozen for this pass, eval BN)."""
        was = self.attention.training
        self.attention.eval()
        self.attention.requires_grad_(False)
        try:
            return self.attention(canvas)
        finally:
            self.attention.requires_grad_(True)
            self.attention.train(was)

    def reward(self, c0, c1, alpha, cstroke, target, fm17, fm2, vgg_t, f0=None, f1=None, mask=None):
        """R(C_t, a_t) per image, and a dict of its parts for logging."""
        c = self.model_cfg
        if c.reward == "wgan":
            d = self.disc_target
            r = d(target, c1) - d(target, c0)                      # r = D'(I, C_{t+1}) - D'(I, C_t)
            return r * c.reward_scale, {"r_gan": r.mean()}
        if c.reward == "l2":
            r = (c0 - target).pow(2).flatten(1).mean(1) - (c1 - target).pow(2).flatten(1).mean(1)
            return r * c.reward_scale, {"r_l2": r.mean()}
        lm0 = masked_l1(c0, target, fm17, c.trunc_lambda)          # Eq. 6.4, L_m(t)
        lm1 = masked_l1(c1, target, fm17, c.trunc_lambda)          #          L_m(t+1)
        parts = {"l1_masked": lm1.mean()}
        r_m = lm0 - lm1                                            # Eq. 6.5, R_m = L_m(t) - L_m(t+1)
        if c.vgg_weight > 0:
            pv0 = self.masks.perceptual(c0, vgg_t)
            pv1 = self.masks.perceptual(c1, vgg_t)
            r_m = r_m + c.vgg_weight * (pv0 - pv1)
            parts["l_vgg"] = pv1.mean()
        r = c.sigma * r_m                                          # Eq. 6.8, sigma * R_m
        parts["r_m"] = r_m.mean()
        if c.use_focus_reward and self.attention is not None:
            f0 = self.focus(c0) if f0 is None else f0              # F_t (detached)
            s = c.focus_size
            if c.focus_reward == "neg":
                # Eq. 6.6 with the strokes blended onto F_t; Eq. 6.7 read causally as
                # R_focus(t) = -L_focus(t) (spec 3.6: L_focus(t+1) would need the next action).
                f1 = self.focus(c1) if f1 is None else f1          # F_{t+1}
                b, k = alpha.shape[:2]
                a_small = down(alpha.flatten(0, 1), s).view(b, k, 1, s, s)
                c_small = down(cstroke.flatten(0, 1), s).view(b, k, 3, s, s)
                blend = composite(f0, a_small, c_small)            # B_t: strokes over F_t
                lf = focus_loss(blend, f1, fm2, c.trunc_lambda)    # Eq. 6.6
                r_focus = -lf
            else:
                # "fg_improve" (spec 3.6 variant b), in Eq. 6.7's difference form:
                # R_focus = D(t) - D(t+1), D = mean(min(|F - down(I * M)|, lambda) * f^2_mask); the
                # gradient reaches the action through Att(C_{t+1}) (module frozen in this pass).
                goal = down(target * (mask if mask is not None else 1.0), s)
                f1 = self._focus_grad(c1) if f1 is None else f1
                d0 = focus_loss(f0, goal, fm2, c.trunc_lambda)
                d1 = focus_loss(f1, goal, fm2, c.trunc_lambda)
                r_focus = d0 - d1
            r = r + c.eta * r_focus                                # Eq. 6.8, + eta * R_focus
            parts["r_focus"] = r_focus.mean()
        return r * c.reward_scale, parts

    # ---- environment (one batched env step per training step)
    @torch.no_grad()
    def _reset(self, batch, device):
        c = self.model_cfg
        img = batch["image"].to(device)
        mask = batch["mask"].to(device)
        has = batch["has_mask"].to(device).float()
        b = img.shape[0]
        fm17, fm2 = self.masks.masks(img, mask, c.size, c.focus_size)
        if self.replay is None:
            self.replay = ReplayBuffer(c.replay_capacity, c.size, c.bundle)
            episodes_kept = c.replay_capacity // max(1, b * c.max_step) + 2
            self.store = TargetStore(episodes_kept * b)
        slots = torch.arange(b) + self.episodes * b
        self.store.put(slots, img, mask, has, fm17, fm2)
        self.env = {"canvas": torch.zeros_like(img), "target": img, "fm17": fm17, "t": 0, "slots": slots}
        self.episodes += 1

    @torch.no_grad()
    def _env_step(self):
        c, e = self.model_cfg, self.env
        was = self.actor.training
        self.actor.eval()
        a = self.act(self.actor, e["canvas"], e["target"], e["fm17"], e["t"])
        self.actor.train(was)
        if c.noise_std > 0:
            a = (a + c.noise_std * torch.randn_like(a)).clamp(0, 1)
        self.replay.add(e["canvas"], a, e["t"], e["slots"])
        e["canvas"] = step_canvas(self.renderer, e["canvas"], a, c.bundle)[0]
        e["t"] += 1
        self.env_steps += 1

    def soft_update(self, target: nn.Module, source: nn.Module, tau: float):
        with torch.no_grad():
            for pt, ps in zip(target.parameters(), source.parameters()):
                pt.mul_(1 - tau).add_(ps, alpha=tau)
            for bt, bs in zip(target.buffers(), source.buffers()):
                bt.copy_(bs)

    def training_step(self, batch, ctx):
        """One batched environment step, then ``updates_per_step`` DDPG updates (after warm-up).

        The batch holds the targets of the next episode; it is used when an episode ends.
        """
        c = self.model_cfg
        if self.env is None or self.env["t"] >= c.max_step:
            self._reset(batch, ctx.device)
        self._env_step()
        logs = {}
        if self.env["t"] >= c.max_step:
            logs["env_l2"] = float((self.env["canvas"] - self.env["target"]).pow(2).mean())
        if self.env_steps < c.warmup:
            return logs
        self.updates_credit += c.updates_per_step
        while self.updates_credit >= 1.0:
            self.updates_credit -= 1.0
            logs.update(self.update(ctx))
        return logs

    def _gan_step(self, ctx, target, canvas):
        """WGAN-GP step of LTP's reward discriminator: real (I, I) vs fake (I, C), lambda_gp = 10,
        the penalty on the whole 6-channel interpolate; target D soft-updated with tau = 0.001."""
        d = ctx.nets["disc"]
        real_in, fake_in = torch.cat([target, target], 1), torch.cat([target, canvas], 1)
        real, fake = d(target, target), d(target, canvas)
        eps = torch.rand(target.shape[0], 1, 1, 1, device=target.device)
        mix = (eps * real_in + (1 - eps) * fake_in).detach().requires_grad_(True)
        out = d(mix[:, :3], mix[:, 3:])
        g = torch.autograd.grad(out.sum(), mix, create_graph=True)[0]
        gp = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss = fake.mean() - real.mean() + 10.0 * gp
        ctx.backward(loss)
        ctx.step("disc")
        self.soft_update(self.disc_target, self.disc, 0.001)
        return {"loss_disc": loss.detach()}

    def update(self, ctx):
        c = self.model_cfg
        dev = ctx.device
        c0, act, t, slot = self.replay.sample(c.batch_size)
        c0, act, t = c0.to(dev), act.to(dev), t.to(dev)
        img, mask, has, fm17, fm2 = self.store.get(slot, dev)
        logs = {}
        vgg_t = self.masks.perceptual_targets(img) if (c.reward == "thesis" and c.vgg_weight > 0) else None
        T = float(c.max_step)

        # 1. attention module, Eq. 6.3 (only images with a known foreground mask)
        if self.attention is not None and bool((has > 0).any()):
            sel = has > 0
            loss_att = attention_loss(ctx.nets["attention"], c0[sel], mask[sel])
            ctx.backward(loss_att)
            ctx.step("attention")
            logs["loss_attention"] = loss_att.detach()

        # 2. critic: y = R(s,a) + gamma (1 - d) [R(s',a') + V'(s', T(s',a'))]   (Eq. 6.9)
        with torch.no_grad():
            c1, al1, cs1 = step_canvas(self.renderer, c0, act, c.bundle)
        if self.disc is not None:
            with torch.enable_grad():
                logs.update(self._gan_step(ctx, img, c1))
        with torch.no_grad():
            f0, f1 = self.focus(c0), self.focus(c1)        # F_t, F_{t+1}, shared by the terms below
            r0, parts = self.reward(c0, c1, al1, cs1, img, fm17, fm2, vgg_t, f0, f1, mask)
            self.actor_target.eval()
            a1 = self.act(self.actor_target, c1, img, fm17, t + 1, focus=f1)
            c2, al2, cs2 = step_canvas(self.renderer, c1, a1, c.bundle)
            r1, _ = self.reward(c1, c2, al2, cs2, img, fm17, fm2, vgg_t, f1, None, mask)
            v1 = self.critic_target(self.critic_input(c1, c2, img, fm17, (t + 2).float() / T)).squeeze(1)
            done = (t + 1 >= c.max_step).float()
            y = r0 + c.gamma * (1 - done) * (r1 + v1)
        v0 = ctx.nets["critic"](self.critic_input(c0, c1, img, fm17, (t + 1).float() / T)).squeeze(1)
        loss_critic = F.mse_loss(r0 + v0, y)
        ctx.backward(loss_critic)
        ctx.step("critic")

        # 3. actor: maximise R(s, mu(s)) + V(s, T(s, mu(s))), through the frozen renderer
        self.critic.requires_grad_(False)
        joint = c.joint_attention and self.attention is not None
        f_act = self.attention(c0) if joint else f0            # joint: actor gradients reach the module
        a = self.act(ctx.nets["actor"], c0, img, fm17, t, focus=f_act)
        c1a, ala, csa = step_canvas(self.renderer, c0, a, c.bundle)
        ra, _ = self.reward(c0, c1a, ala, csa, img, fm17, fm2, vgg_t, f0, None, mask)
        va = self.critic(self.critic_input(c0, c1a, img, fm17, (t + 1).float() / T)).squeeze(1)
        loss_actor = -(ra + va).mean()
        ctx.backward(loss_actor)
        ctx.step("actor")
        if joint:
            ctx.step("attention")
        self.critic.requires_grad_(True)

        # 4. soft target updates
        self.soft_update(self.actor_target, self.actor, c.tau)
        self.soft_update(self.critic_target, self.critic, c.tau)
        logs.update({"loss_critic": loss_critic.detach(), "loss_actor": loss_actor.detach(),
                     "reward": r0.mean(), "value": v0.detach().mean(), **{k: v.detach() for k, v in parts.items()}})
        return logs

    @torch.no_grad()
    def visuals(self, batch):
        img = batch["image"][:4].to(self.coords.device)
        was = self.training
        canvas = paint_with_actor(self, img, max(1, self.model_cfg.max_step) * self.model_cfg.bundle)[0]
        self.train(was)                           # paint_with_actor switches to eval mode
        return {"target": img * 2 - 1, "painting": canvas * 2 - 1}


# =============================================================================================
# 7. Inference with a trained actor
# =============================================================================================

def resolve_asset(path: str) -> str:
    """A path as given, or relative to the installed package (``condsynth/assets/...``)."""
    from pathlib import Path
    p = Path(path)
    if p.exists():
        return str(p)
    pkg = Path(__file__).resolve().parents[1]
    for cand in (pkg / path, pkg.parent / path, pkg / Path(path).relative_to("condsynth")
                 if path.startswith("condsynth/") else pkg / path):
        if cand.exists():
            return str(cand)
    return str(p)


@torch.no_grad()
def paint_with_actor(agent: "PaintingAgent", target: torch.Tensor, n_strokes: int, canvas=None,
                     callback=None, t_range=(0.0, 1.0)):
    """Paint ``B x 3 x S x S`` targets with the actor, ``n_strokes`` strokes each.

    The time input t/T runs over the requested budget (``ceil(n/k)`` steps), so the actor's
    coarse-to-fine schedule spans it. Returns (canvas, strokes ``B x n x 13``).
    """
    c = agent.model_cfg
    agent.eval()
    k = c.bundle
    steps = -(-n_strokes // k)
    canvas = torch.zeros_like(target) if canvas is None else canvas
    fm17, _ = agent.masks.masks(target, None, target.shape[-1], c.focus_size) \
        if agent.masks.kind != "ground_truth" else (torch.ones_like(target[:, :1]), None)
    out = []
    for t in range(steps):
        tt = (t_range[0] + (t_range[1] - t_range[0]) * t / steps) * c.max_step
        a = agent.act(agent.actor, canvas, target, fm17, tt)
        a = a.view(a.shape[0], k, STROKE_PARAMS)
        take = min(k, n_strokes - t * k)
        a = a[:, :take]
        canvas = step_canvas(agent.renderer, canvas, a.reshape(a.shape[0], -1), take)[0]
        out.append(a)
        if callback is not None:
            callback(t * k + take, canvas, a)
    return canvas, torch.cat(out, 1)

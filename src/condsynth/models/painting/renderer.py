"""The neural renderer H_r (thesis Sec. 6.3.2) and the method that trains it.

H_r maps a stroke's ten shape parameters (:mod:`condsynth.data.synth.strokes`) to its 128x128
alpha map, so that canvases are differentiable in the strokes: the agent's actor learns through
it, and ``--mode optimize`` fits strokes through it. It is LearningToPaint's (LTP) renderer: FC
layers, a reshape to a 16x16 map, then convolutions and pixel shuffles up to the canvas size. It
is trained against the NumPy rasteriser, the ground truth, on random strokes
(:mod:`condsynth.data.strokes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.config import bounded
from condsynth.data.strokes import RendererDataConfig, StrokeBank, StrokeDataset
from condsynth.data.synth.strokes import SHAPE_PARAMS
from condsynth.models.base import Method

HELDOUT_STROKES = 2048        # strokes of the held-out seed in the "val" split


@dataclass
class RendererConfig:
    """Neural renderer H_r. The thesis uses LearningToPaint's renderer (FC 10-512-1024-2048-4096,
    16x16x16 -> pixel-shuffled convs -> 128^2). ``fc`` and ``conv`` widths are options; the bundled
    renderer uses a narrower net (docs/painting.md, "deviations")."""

    size: int = bounded(128, 16, 4096)
    fc: list[int] = bounded(min=1, max=65536, factory=lambda: [512, 1024, 2048, 4096])
    base_channels: int = bounded(16, 1, 4096)          # channels of the 16x16 map the last FC layer is reshaped to
    conv_widths: list[int] = bounded(min=1, max=4096, factory=lambda: [32, 16, 8])   # hidden width per 2x stage
    relative_p1: bool = False        # LTP's relative middle control point (rasteriser option)
    lr: float = bounded(1e-4, 0, 10)                 # Adam; LTP: 1e-4, then 1e-5 and 1e-6 (train.schedule kind=step)
    # Training loss. "mse" is LTP's. "bce" (binary cross-entropy on the logits, the alpha map as a
    # soft target) does not saturate with the sigmoid and sharpened edges ~20% faster per step in a
    # CPU comparison (docs/painting.md); evaluation is MSE either way.
    loss: Literal["mse", "bce"] = "mse"


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


class RendererMethod(Method):
    """Trains H_r against the rasteriser on random strokes (LTP's recipe: MSE, or BCE on the logits)."""

    name = "painting_renderer"
    ModelConfig = RendererConfig
    DataConfig = RendererDataConfig
    inference_networks = ("renderer",)
    pipeline = "condsynth.pipelines.paint:PaintingPipeline"

    def __init__(self, model_cfg: RendererConfig, data_cfg: RendererDataConfig):
        super().__init__(model_cfg, data_cfg)
        self.renderer = NeuralRenderer(model_cfg)

    def networks(self):
        return {"renderer": self.renderer}

    def configure_optimizers(self, train_cfg):
        return {"renderer": torch.optim.Adam(self.renderer.parameters(), lr=self.model_cfg.lr, foreach=True)}

    def build_dataset(self, split: str):
        """Training strokes from the bank if there is one, else rasterised on the fly; the held-out
        split always draws fresh strokes of ``heldout_seed``."""
        if split == "train" and self.data_cfg.bank:
            return StrokeBank(self.data_cfg.bank, self.model_cfg.size, self.model_cfg.relative_p1)
        seed = self.data_cfg.seed if split == "train" else self.data_cfg.heldout_seed
        length = self.data_cfg.length if split == "train" else HELDOUT_STROKES
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

"""A complete method in sixty lines: copy this file to start a new one.

It learns an image-to-image map by L1 regression (no adversary), on pix2pix's paired layout,
and runs through ``condsynth train``, ``--resume``, ``condsynth export`` and the
``TranslationPipeline`` like every method. The contract is in ``condsynth/models/base.py``; to
register a copy, add ``"my_method": "condsynth.models.my_method:MyMethod"`` to
``condsynth/models/__init__.py``, and a tiny config for it to ``condsynth/testing.py`` so that
``tests/test_contract.py`` runs it through one step, save, resume, export and its pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.data.translation import PairedDataConfig, paired_dataset
from condsynth.models.base import Method, StepContext


@dataclass
class TemplateConfig:
    width: int = 16          # channels of the hidden convolutions
    depth: int = 3           # 3x3 conv + ReLU layers
    lr: float = 2e-4


class SmallConvNet(nn.Module):
    stride = 1               # any input size works; the pipeline pads to a multiple of this

    def __init__(self, cfg: TemplateConfig, in_ch: int = 3, out_ch: int = 3):
        super().__init__()
        layers, c = [], in_ch
        for _ in range(cfg.depth):
            layers += [nn.Conv2d(c, cfg.width, 3, padding=1), nn.ReLU(inplace=True)]
            c = cfg.width
        self.body = nn.Sequential(*layers, nn.Conv2d(c, out_ch, 3, padding=1), nn.Tanh())

    def forward(self, x):
        return self.body(x)


class TemplateMethod(Method):
    name = "template"                       # the config's `method:`, and the registry key
    ModelConfig = TemplateConfig            # the YAML `model:` section
    DataConfig = PairedDataConfig           # the YAML `data:` section
    inference_networks = ("G",)             # what `condsynth export` writes
    pipeline = "condsynth.pipelines.translate:TranslationPipeline"   # what runs the export
    ema_networks = ("G",)                   # what train.ema_decay may average

    def __init__(self, model_cfg: TemplateConfig, data_cfg: PairedDataConfig):
        super().__init__(model_cfg, data_cfg)
        self.G = SmallConvNet(model_cfg)          # inference networks only; no I/O here

    def networks(self):
        return {"G": self.G}

    def configure_optimizers(self, train_cfg):
        return {"G": torch.optim.Adam(self.G.parameters(), lr=self.model_cfg.lr)}

    def build_dataset(self, split: str):
        return paired_dataset(self.data_cfg, split)

    def training_step(self, batch, ctx: StepContext):
        loss = F.l1_loss(ctx.nets["G"](batch["A"]), batch["B"])
        ctx.backward(loss)
        ctx.step("G")
        return {"loss_L1": loss.detach()}

    @torch.no_grad()
    def translate(self, x: torch.Tensor) -> torch.Tensor:
        return self.G(x)

    @torch.no_grad()
    def visuals(self, batch):
        """Images in [-1, 1] shown side by side in the run's grids; here also the L1 error map."""
        out = self.G(batch["A"])
        error = (out - batch["B"]).abs().mean(1, keepdim=True).expand_as(out) - 1
        return {"input": batch["A"], "output": out, "target": batch["B"], "error": error}

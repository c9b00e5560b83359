"""The small contract between a method and the training engine.

A method is one file under ``condsynth/models/`` with a :class:`Method` subclass. It owns its
networks, losses and one training step; the engine (``condsynth.engine``) owns everything around
it: devices, DDP, mixed precision, EMA, schedules, checkpoints, resume, logging, progress.

What a method provides::

    class Pix2Pix(Method):
        name = "pix2pix"
        ModelConfig = Pix2PixConfig        # dataclass, the YAML 'model:' section
        DataConfig = PairedDataConfig      # dataclass, the YAML 'data:' section
        ema_networks = ("G",)              # networks the engine may keep an EMA copy of
        inference_network = "G"            # what pipelines load

        def __init__(self, model_cfg, data_cfg): ...build self.G, self.D...
        def networks(self): return {"G": self.G, "D": self.D}
        def configure_optimizers(self, train_cfg): return {"G": Adam(...), "D": Adam(...)}
        def build_dataset(self, split): return a torch Dataset
        def training_step(self, batch, ctx): ...; return {"loss_G": ..., ...}
        def visuals(self, batch): return {"input": x, "output": G(x), "target": y}

Inside ``training_step`` the method calls ``ctx.nets[name]`` for a forward whose gradients must
be synchronised across processes (the DDP-wrapped network), ``ctx.backward(loss)`` and
``ctx.step(name)`` (gradient clipping, optimizer step, zero_grad). ``self.<net>`` is the plain
network, for forwards that need no gradient sync (e.g. D while updating G).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ClassVar

import torch
from torch import nn


class StepContext:
    """What the engine hands to ``Method.training_step``."""

    def __init__(self, nets: dict[str, nn.Module], backward: Callable, step: Callable,
                 autocast: Callable[[], contextlib.AbstractContextManager], device: torch.device,
                 global_step: int, epoch: int):
        self.nets = nets
        self._backward = backward
        self._step = step
        self.autocast = autocast
        self.device = device
        self.global_step = global_step
        self.epoch = epoch

    def backward(self, loss: torch.Tensor) -> None:
        self._backward(loss)

    def step(self, optimizer_name: str) -> None:
        self._step(optimizer_name)


class Method(nn.Module):
    name: ClassVar[str] = ""
    ModelConfig: ClassVar[type]
    DataConfig: ClassVar[type]
    ema_networks: ClassVar[tuple[str, ...]] = ()
    inference_network: ClassVar[str | None] = None

    def __init__(self, model_cfg, data_cfg):
        super().__init__()
        self.model_cfg = model_cfg
        self.data_cfg = data_cfg

    # -- to implement -------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        raise NotImplementedError

    @torch.no_grad()
    def visuals(self, batch: Any) -> dict[str, torch.Tensor]:
        """Images in [-1, 1], ``N x C x H x W``, shown side by side in TensorBoard and grids."""
        return {}

    @torch.no_grad()
    def evaluate(self, batch: Any) -> dict[str, float]:
        """Optional held-out scalars, computed without gradients on one batch."""
        return {}

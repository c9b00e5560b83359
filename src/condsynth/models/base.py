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
        inference_networks = ("G",)        # what `condsynth export` writes and pipelines load
        pipeline = "condsynth.pipelines.translate:TranslationPipeline"

        def __init__(self, model_cfg, data_cfg): ...build self.G (no I/O)...
        def setup_training(self): ...build self.D (training only)...
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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FrozenRef:
    """A pretrained sub-network from another run, used but never trained (the painting agent's
    renderer, DAMSM under HfGAN, a lip reader under AVWnet). The engine loads it, records its
    path, method and checksum in every checkpoint instead of copying its weights, and refuses
    to resume when the file behind the path has changed. An export copies it in as a component.

    ``path``: a checkpoint folder, run folder, export component or bundled name;
    ``method``: the method(s) it must come from; ``network``: which of its networks to take
    (default: the checkpoint's only inference network)."""

    path: str
    method: str | tuple[str, ...]
    network: str | None = None


class Method(nn.Module):
    """Subclass this for a new method; ``condsynth/models/template.py`` is a complete example.

    Life cycle. Training: ``__init__`` -> ``setup_training()`` -> frozen parts attached ->
    ``networks()``/``configure_optimizers()``/``build_dataset()`` -> ``training_step`` repeated,
    with ``extra_state()`` saved in every checkpoint and ``load_extra_state()`` on resume.
    Inference: ``__init__`` -> weights of ``inference_networks`` (and frozen parts) loaded ->
    ``prepare_for_inference()`` -> the task's call (``translate``, ``act``, ...) by a pipeline.
    ``__init__`` does no I/O and builds what inference needs; anything only training needs
    (discriminators, critics, target networks, loss networks) belongs in ``setup_training``.
    """

    name: ClassVar[str] = ""
    ModelConfig: ClassVar[type]
    DataConfig: ClassVar[type]
    ema_networks: ClassVar[tuple[str, ...]] = ()
    # networks a pipeline needs, exported by `condsynth export` (EMA weights where present)
    inference_networks: ClassVar[tuple[str, ...]] = ()
    # "module:Class" of the Pipeline that runs this method's exports
    pipeline: ClassVar[str] = ""
    # named subsets of inference_networks that `condsynth export --part NAME` may write alone
    # (CycleGAN: {"AtoB": ("G_A",), "BtoA": ("G_B",)}); a pipeline loaded from such an export has
    # the other inference networks set to None
    export_parts: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, model_cfg, data_cfg):
        super().__init__()
        self.model_cfg = model_cfg
        self.data_cfg = data_cfg

    # -- to implement -------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """Every trained network (placed, DDP-wrapped and saved by the engine)."""
        raise NotImplementedError

    def configure_optimizers(self, train_cfg) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        raise NotImplementedError

    # -- optional hooks -----------------------------------------------------------------------
    def setup_training(self) -> None:
        """Build what only training needs. Called once by the engine, before ``networks()``."""

    def frozen_networks(self) -> dict[str, FrozenRef]:
        """Pretrained parts from other runs, by attribute name (see :class:`FrozenRef`)."""
        return {}

    def inference_frozen(self) -> tuple[str, ...]:
        """The frozen parts that inference needs, so that an export writes them and nothing else
        (default: all of ``frozen_networks()``; a method whose loss alone uses one leaves it out)."""
        return tuple(self.frozen_networks())

    def attach_frozen(self, name: str, net: nn.Module) -> None:
        """Receive a loaded frozen part (default: ``self.<name> = net``); check it fits here."""
        setattr(self, name, net.requires_grad_(False).eval())

    def extra_state(self) -> dict:
        """Method state that is not network weights (replay buffers, image pools, counters):
        nested dicts/lists of tensors, arrays, numbers and strings, saved in every checkpoint."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned, on ``--resume``."""

    def init_weights_for(self, name: str, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``train.init_from``: the source run's weights of network ``name`` (its ``"<name>."`` prefix
        removed), mapped onto this method's network before they are loaded (strictly, with
        ``train.init_strict``). Default: unchanged. A method whose network grows between stages maps
        the keys here, e.g. pix2pixHD's global generator G1 into its local enhancer's ``global_net``."""
        return weights

    def on_before_save(self) -> None:
        """Called before each checkpoint (e.g. pix2pixHD's instance-feature clustering)."""

    def eval_metrics(self) -> dict[str, Any]:
        """Held-out metric objects (torchmetrics ``Metric``s whose ``compute()`` returns a dict),
        fed by :meth:`eval_update` over the eval split and computed after the DDP reduction."""
        return {}

    def eval_update(self, batch: Any, metrics: dict[str, Any]) -> None:
        """Update the objects of :meth:`eval_metrics` with one held-out batch."""

    def prepare_for_inference(self) -> None:
        """Default: every inference network in eval mode, without gradients."""
        self.eval()
        for name in self.inference_networks:
            net = getattr(self, name, None)
            if net is not None:
                net.eval().requires_grad_(False)

    @torch.no_grad()
    def visuals(self, batch: Any) -> dict[str, torch.Tensor]:
        """Images in [-1, 1], ``N x C x H x W``, shown side by side in TensorBoard and grids."""
        return {}

    @torch.no_grad()
    def evaluate(self, batch: Any) -> dict[str, float]:
        """Optional held-out scalars on one batch (averaged over the eval batches by sample count)."""
        return {}

"""The inference contract: one ``Pipeline`` per task, loaded and saved the same way for every method.

    pipe = TranslationPipeline.from_pretrained("pix2pix-scenes64")   # bundled name, export, run, checkpoint
    out = pipe(image, seed=0)                                       # -> an output object with .save(...)
    pipe.save_pretrained("exports/p2p")                              # what `condsynth export` writes

A pipeline wraps a :class:`~condsynth.models.base.Method` whose inference networks (and frozen
parts) are loaded. ``from_pretrained`` accepts a pipeline folder (one component per network,
each ``config.json`` + ``model.safetensors``), a training checkpoint, a run folder (its newest
checkpoint) or a bundled name; ``save_pretrained`` writes the pipeline folder. Randomness comes
from ``seed=`` and never touches the global RNG; ``device=`` places everything.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path
from typing import ClassVar

import torch

from condsynth.config import check_device
from condsynth.engine.checkpoint import load_for_inference, save_pipeline
from condsynth.errors import UserError


def pick_device(name: str | torch.device) -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a device -> a device that exists here."""
    return name if isinstance(name, torch.device) else check_device(name, "--device")


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device):
    """Run a block with its own RNG stream (dropout, noise) and restore the caller's afterwards."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class Pipeline:
    """Base class: loading, saving, device. Subclasses define ``methods`` and ``__call__``."""

    # REGISTRY names this pipeline can run; empty: any method whose ``pipeline`` names this class
    methods: ClassVar[tuple[str, ...]] = ()

    def __init__(self, method, config, device: torch.device | str = "cpu", source: str = ""):
        self.method = method
        self.config = config
        self.device = pick_device(device)
        self.source = source
        method.to(self.device)
        method.prepare_for_inference()
        self.check_method(method)

    def check_method(self, method) -> None:
        """Refuse a method that lacks what ``__call__`` needs (its task protocol)."""

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str | torch.device = "auto",
                        use_ema: bool = True) -> Pipeline:
        if cls is Pipeline:
            return load_pipeline(name_or_path, device, use_ema)
        dev = pick_device(device)
        method, cfg, folder = load_for_inference(name_or_path, expected_method=cls.methods or None,
                                                 use_ema=use_ema, device=dev)
        if not cls.methods and method.pipeline and pipeline_class(method.pipeline) is not cls:
            raise UserError(f"{name_or_path}: a '{cfg.method}' model is run by {method.pipeline.split(':')[-1]}, "
                            f"not {cls.__name__}")
        return cls(method, cfg, dev, source=str(folder))

    def save_pretrained(self, out: str | Path, half: bool = False, overwrite: bool = False,
                        part: str | None = None) -> Path:
        """Write this pipeline's components as a pipeline folder (atomically; an existing ``out``
        is replaced only with ``overwrite``, and never the checkpoint it was loaded from).
        ``part``: one of the method's ``export_parts`` alone (CycleGAN: ``"AtoB"`` or ``"BtoA"``)."""
        return save_pipeline(self.method, self.config, out, half=half, source=self.source, overwrite=overwrite,
                             part=part)

    def to(self, device: str | torch.device) -> Pipeline:
        self.device = pick_device(device)
        self.method.to(self.device)
        return self

    def __call__(self, *args, **kwargs):
        raise NotImplementedError


def pipeline_class(target: str) -> type[Pipeline]:
    module_name, cls_name = target.split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def load_pipeline(name_or_path: str | Path, device: str | torch.device = "auto", use_ema: bool = True) -> Pipeline:
    """The right pipeline for whatever method a checkpoint or export holds."""
    dev = pick_device(device)
    method, cfg, folder = load_for_inference(name_or_path, use_ema=use_ema, device=dev)
    if not method.pipeline:
        raise UserError(f"{name_or_path}: '{cfg.method}' has no inference pipeline")
    return pipeline_class(method.pipeline)(method, cfg, dev, source=str(folder))

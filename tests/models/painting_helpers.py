"""Tiny painting set-ups shared by the tests in tests/models: a 32x32 renderer checkpoint, a tiny
agent config and the StepContext a training step needs. Imported by name (``import painting_helpers``):
pytest puts this folder on ``sys.path`` for the test files in it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from condsynth.config import to_dict
from condsynth.io.checkpoint import write_checkpoint
from condsynth.models import painting as P
from condsynth.models.base import StepContext

TINY_RENDERER = P.RendererConfig(size=32, fc=[64, 1024], base_channels=4, conv_widths=[8])


def write_renderer(folder: Path, net) -> Path:
    """A renderer checkpoint folder in the engine's format (what `load_renderer` reads)."""
    weights = {f"renderer.{k}": v for k, v in net.state_dict().items()}
    return write_checkpoint(Path(folder), {"config": {"method": "painting_renderer", "model": to_dict(net.cfg)}},
                            weights)


def tiny_renderer_checkpoint(folder: Path) -> Path:
    """An untrained :data:`TINY_RENDERER` (seed 0) as a checkpoint folder."""
    torch.manual_seed(0)
    return write_renderer(folder, P.NeuralRenderer(TINY_RENDERER))


def tiny_agent_cfg(renderer, **kw):
    """A 32x32 agent over ``renderer`` that takes a DDPG update from its third step on."""
    base = dict(renderer=str(renderer), size=32, focus_size=16, net_input_size=32, max_step=3,
                actor_width=4, critic_width=4, attention_width=8, attention_unet_width=4,
                feature_mask="saliency", vgg_weight=0.0, batch_size=6, warmup=2, updates_per_step=1.0,
                replay_capacity=64)
    base.update(kw)
    return P.PaintingAgentConfig(**base)


def make_ctx(method, opts) -> StepContext:
    """The engine's StepContext on CPU: plain backward, then step and zero the named optimizer."""
    def step(name):
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)
    return StepContext(method.networks(), lambda loss: loss.backward(), step, contextlib.nullcontext,
                       torch.device("cpu"), 0, 0)

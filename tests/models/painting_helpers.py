"""Tiny painting set-ups shared by the tests in tests/models: a 32x32 renderer checkpoint and a tiny
agent config. Imported by name (``import painting_helpers``): pytest puts this folder on
``sys.path`` for the test files in it. The step context is :func:`condsynth.testing.fake_context`."""

from __future__ import annotations

from pathlib import Path

import torch

from condsynth import testing
from condsynth.config import to_dict
from condsynth.io.checkpoint import write_checkpoint
from condsynth.models import painting as P

TINY_RENDERER = P.RendererConfig(**testing.TINY_RENDERER)     # 32x32 strokes, 4x16x16 map


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

"""Attention-aware neural painting with model-based deep RL (thesis Ch. 6), one file per part:

* :mod:`.renderer`: the neural renderer H_r and the method that trains it (``painting_renderer``);
* :mod:`.env`: the environment, C(t+1) = a_c + (1 - a_r) * C(t), with the replay buffer;
* :mod:`.attention`: the attention module and Eq. 6.3;
* :mod:`.feature_masks`: the feature masks and L_vgg;
* :mod:`.agent`: the rewards (Eq. 6.4-6.8) and the DDPG method (``painting_agent``, Eq. 6.9),
  and painting with a trained actor;
* :mod:`.optimize`: painting without an agent, strokes fitted through the renderer.

The strokes themselves and their rasteriser are data (:mod:`condsynth.data.synth.strokes`), the
renderer's training data is :mod:`condsynth.data.strokes`, and stroke files are
:mod:`condsynth.io.strokes`. The names below are re-exported, so that
``from condsynth.models import painting as P; P.step_canvas(...)`` works.
"""

from __future__ import annotations

from condsynth.data.strokes import RendererDataConfig, StrokeBank, StrokeDataset, write_stroke_bank
from condsynth.data.synth.strokes import (
    SHAPE_PARAMS,
    STROKE_PARAMS,
    paint_strokes_cpu,
    rasterize_stroke,
    rasterize_strokes,
)
from condsynth.models.painting.agent import PaintingAgent, PaintingAgentConfig, paint_with_actor
from condsynth.models.painting.analytic_renderer import (AnalyticRenderer, paint_hard, paint_hard_greedy, render_hard,
                                                         render_soft, stroke_discs)
from condsynth.models.painting.attention import AttentionModule, attention_loss
from condsynth.models.painting.env import (
    ReplayBuffer,
    TargetStore,
    closed_form_color,
    composite,
    paint_bundle,
    render_bundle,
    step_canvas,
)
from condsynth.models.painting.feature_masks import FeatureMasks
from condsynth.models.painting.optimize import optimize_strokes
from condsynth.models.painting.renderer import NeuralRenderer, RendererConfig, RendererMethod

__all__ = [
    "SHAPE_PARAMS", "STROKE_PARAMS", "AnalyticRenderer", "AttentionModule", "FeatureMasks", "NeuralRenderer", "PaintingAgent",
    "PaintingAgentConfig", "RendererConfig", "RendererDataConfig", "RendererMethod", "ReplayBuffer",
    "StrokeBank", "StrokeDataset", "TargetStore", "attention_loss", "composite",
    "optimize_strokes", "paint_strokes_cpu", "paint_with_actor", "rasterize_stroke", "rasterize_strokes",
    "render_bundle", "step_canvas", "write_stroke_bank", "paint_hard", "paint_hard_greedy", "render_hard", "render_soft",
    "stroke_discs", "closed_form_color", "paint_bundle",
]

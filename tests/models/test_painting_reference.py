"""The painting method computes what it computed before it was split into a package.

``tests/data/painting_reference.json`` holds numbers computed with fixed seeds by the single-file
``models/painting.py`` (commit "Painting reference numbers"): the reward parts of a batch for every
reward variant, the loss logs of the first DDPG updates of five tiny agents, and canvases painted by a
randomly initialised actor over the bundled renderer and by stroke optimisation. Regenerate it only
for an intended change of behaviour::

    OMP_NUM_THREADS=1 PYTHONPATH=src python tests/models/test_painting_reference.py --write
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import tempfile
from pathlib import Path

import torch

from condsynth.data.painting import PaintingDataConfig
from condsynth.models import painting as P
from condsynth.nn.vgg import VGGFeatures
from condsynth.testing import fake_context
from condsynth.testing import prepare_training
from painting_helpers import tiny_agent_cfg, tiny_renderer_checkpoint

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "painting_reference.json"
TOLERANCE = 5e-3          # relative and absolute: an AVX-512 CPU rounds differently from the AVX2 one that wrote the file (9e-4 seen after 3 updates)

# Agent variants, as overrides of painting_helpers.tiny_agent_cfg.
VARIANTS = {
    "thesis_neg": {},
    "thesis_fg_improve": {"focus_reward": "fg_improve"},
    "thesis_vgg": {"feature_mask": "vgg", "vgg_weight": 1.0},
    "wgan_no_attention": {"reward": "wgan", "attention": False},
    "l2": {"reward": "l2"},
}


@contextlib.contextmanager
def seeded_vgg():
    """VGG-16 "pretrained" weights drawn from a fixed seed (He-normal, zero biases), so that the VGG
    feature masks and L_vgg run without torchvision's ImageNet file."""
    def load(self, weights_path=None, weights_sha256=None):
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in self.features.parameters():
                if p.dim() > 1:
                    p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / p[0].numel()))
                else:
                    p.zero_()
    original = VGGFeatures.load_pretrained
    VGGFeatures.load_pretrained = load
    try:
        yield
    finally:
        VGGFeatures.load_pretrained = original


def _floats(t: torch.Tensor) -> list:
    return t.detach().double().flatten().tolist()


def _canvas(t: torch.Tensor) -> dict:
    """A canvas as its sums and a strided sample (the whole canvas would make the file large)."""
    t = t.detach().double()
    return {"sum": float(t.sum()), "sq_sum": float(t.pow(2).sum()), "sample": _floats(t[..., ::16, ::16])}


def _agent(cfg, size: int) -> P.PaintingAgent:
    return prepare_training(P.PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=32, size=size,
                                                                    flip=False)))


def reward_parts(renderer) -> dict:
    """R(C_t, a_t) per image and its logged parts, for one random batch of four."""
    out = {}
    for name, kw in VARIANTS.items():
        torch.manual_seed(1)
        m = _agent(tiny_agent_cfg(renderer, **kw), 32)
        g = torch.Generator().manual_seed(2)
        img = torch.rand(4, 3, 32, 32, generator=g)
        mask = (torch.rand(4, 1, 32, 32, generator=g) > 0.5).float()
        c0 = torch.rand(4, 3, 32, 32, generator=g) * 0.5
        act = torch.rand(4, 5 * 13, generator=g)
        with torch.no_grad():
            fm17, fm2 = m.masks.masks(img, mask, 32, 16)
            c1, alpha, cs = P.step_canvas(m.renderer, c0, act, 5)
            vgg_t = m.masks.perceptual_targets(img) if m.model_cfg.vgg_weight > 0 else None
            r, parts = m.reward(c0, c1, alpha, cs, img, fm17, fm2, vgg_t, mask=mask)
        out[name] = {"r": _floats(r), **{k: float(v) for k, v in sorted(parts.items())}}
    return out


def training_logs(renderer, steps: int = 4) -> dict:
    """The logs of ``steps`` training steps (warm-up 2, then one DDPG update per step)."""
    out = {}
    for name, kw in VARIANTS.items():
        torch.manual_seed(3)
        m = _agent(tiny_agent_cfg(renderer, **kw), 32)
        opts = m.configure_optimizers(None)
        loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=3))
        out[name] = [{k: float(v) for k, v in sorted(m.training_step(next(loader), fake_context(m, opts)).items())}
                     for _ in range(steps)]
    return out


def paintings() -> dict:
    """A random tiny actor over the bundled 128x128 renderer, and stroke optimisation."""
    torch.manual_seed(4)
    cfg = P.PaintingAgentConfig(focus_size=32, net_input_size=32, max_step=4, actor_width=4, critic_width=4,
                                attention_width=8, attention_unet_width=4, attention_res_blocks=1,
                                feature_mask="saliency", vgg_weight=0.0)
    m = _agent(cfg, 128)
    target = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    canvas, strokes = P.paint_with_actor(m, target, 12)
    canvas2, strokes2 = P.paint_with_actor(m, target, 7, canvas, None, (0.5, 1.0))   # a partial last bundle
    with torch.inference_mode(False):
        canvas3, strokes3 = P.optimize_strokes(m.renderer, target[:1], 6, group=4, iters=3, seed=0)
    return {"agent": {"canvas": _canvas(canvas), "strokes": _floats(strokes)},
            "agent_continued": {"canvas": _canvas(canvas2), "strokes": _floats(strokes2)},
            "optimize": {"canvas": _canvas(canvas3), "strokes": _floats(strokes3)}}


def compute() -> dict:
    with seeded_vgg(), tempfile.TemporaryDirectory() as tmp:
        renderer = tiny_renderer_checkpoint(Path(tmp) / "renderer")
        return {"reward": reward_parts(renderer), "training": training_logs(renderer), "paint": paintings()}


def _assert_close(actual, expected, where: str = "") -> None:
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), where
        for k in expected:
            _assert_close(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_close(a, e, f"{where}[{i}]")
    else:
        assert math.isclose(actual, expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE), f"{where}: {actual} != {expected}"


def test_painting_reproduces_the_reference_numbers():
    _assert_close(compute(), json.loads(REFERENCE.read_text()))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"(re)write {REFERENCE}")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = compute()
    if args.write:
        REFERENCE.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {REFERENCE}")
    else:
        _assert_close(result, json.loads(REFERENCE.read_text()))
        print("matches", REFERENCE)

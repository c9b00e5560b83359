"""The attention module, feature masks, rewards and DDPG of the painting agent
(models/painting/attention.py, feature_masks.py, agent.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from condsynth.data.painting import PaintingDataConfig
from condsynth.models.painting.agent import PaintingAgent
from condsynth.models.painting.attention import AttentionModule, attention_loss
from condsynth.models.painting.env import composite, step_canvas
from condsynth.models.painting.feature_masks import FeatureMasks
from condsynth.nn.blocks import resize
from condsynth.testing import fake_context
from condsynth.testing import prepare_training
from painting_helpers import tiny_agent_cfg, tiny_renderer_checkpoint


@pytest.fixture(scope="module")
def tiny_renderer(tmp_path_factory):
    return tiny_renderer_checkpoint(tmp_path_factory.mktemp("renderer"))


def tiny_agent(renderer, length=8, **kw) -> PaintingAgent:
    cfg = tiny_agent_cfg(renderer, **kw)
    return prepare_training(PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=length,
                                                                  size=cfg.size)))


def train_attention_on_left_half(att: AttentionModule, steps: int = 150) -> torch.Tensor:
    """Eq. 6.3 on random canvases with the foreground = the left half; returns that mask."""
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1
    opt = torch.optim.Adam(att.parameters(), 3e-3)
    for _ in range(steps):
        loss = attention_loss(att, torch.rand(8, 3, 32, 32), mask.expand(8, -1, -1, -1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mask


# ----------------------------------------------------------------------------- rewards

def test_masked_l1_reward_sign_and_mask(tiny_renderer):
    masked_l1 = tiny_agent(tiny_renderer).truncated_l1             # lambda = 1
    target = torch.zeros(1, 3, 16, 16)
    target[..., 4:12, 4:12] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    fmask = torch.zeros(1, 1, 16, 16)
    fmask[..., 4:12, 4:12] = 1
    c0 = torch.zeros_like(target)
    c1 = c0.clone()
    c1[..., 6:10, 6:10] = target[..., 6:10, 6:10]                  # a stroke copying the target inside M
    r_m = masked_l1(c0, target, fmask) - masked_l1(c1, target, fmask)   # Eq. 6.5
    assert r_m.shape == (1,) and r_m.item() > 0
    c2 = c0.clone()
    c2[..., 0:2, 0:2] = 0.7                                        # outside the mask: no reward
    assert (masked_l1(c0, target, fmask) - masked_l1(c2, target, fmask)).item() == 0
    # truncation at lambda
    truncated = tiny_agent(tiny_renderer, trunc_lambda=0.25).truncated_l1
    assert truncated(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2)).item() == 0.25


def test_feature_masks_shapes_and_range():
    img = torch.rand(2, 3, 32, 32)
    for kind in ("saliency", "none"):
        fm = FeatureMasks(kind, vgg_perceptual=False)
        m17, m2 = fm.masks(img, None, 32, 16)
        assert m17.shape == (2, 1, 32, 32) and m2.shape == (2, 1, 16, 16)
        assert m17.min() >= 0 and m17.max() <= 1 + 1e-6


def test_vgg_masks_need_pretrained_weights(monkeypatch, tmp_path):
    from condsynth.errors import MissingWeightsError
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CONDSYNTH_VGG16", raising=False)
    with pytest.raises(MissingWeightsError):
        FeatureMasks("vgg")                                        # never silently random


def test_focus_reward_prefers_strokes_inside_the_foreground(tiny_renderer):
    """R_focus(t) = -L_focus(t) (Eq. 6.6/6.7): with an attention module that keeps the foreground
    and suppresses the rest (here: trained briefly on Eq. 6.3), a stroke inside M costs less."""
    torch.manual_seed(0)
    att = AttentionModule(width=8, unet_width=4, n_res=1, size=16)
    train_attention_on_left_half(att)
    att.eval()
    focus_loss = tiny_agent(tiny_renderer).truncated_l1            # Eq. 6.6's truncated L1, lambda = 1

    def r_focus(x0):
        c0 = torch.full((1, 3, 32, 32), 0.2)
        alpha = torch.zeros(1, 1, 1, 32, 32)
        alpha[..., 8:24, x0:x0 + 8] = 1.0
        cs = alpha * torch.tensor([0.9, 0.9, 0.1]).view(1, 1, 3, 1, 1)
        c1 = composite(c0, alpha, cs)
        with torch.no_grad():
            f0, f1 = att(c0), att(c1)
            blend = composite(f0, resize(alpha.flatten(0, 1), 16).view(1, 1, 1, 16, 16),
                              resize(cs.flatten(0, 1), 16).view(1, 1, 3, 16, 16))
            return -focus_loss(blend, f1, torch.ones(1, 1, 16, 16)).item()
    assert r_focus(4) > r_focus(20)                                # inside M beats outside M


def test_fg_improve_focus_reward_prefers_foreground_and_has_a_gradient(tiny_renderer):
    """focus_reward='fg_improve': R_focus = D(t) - D(t+1) on the focused canvas; a stroke that copies
    the target inside M earns more than the same stroke outside M, and the reward is differentiable
    in the action through Att(C_{t+1})."""
    torch.manual_seed(0)
    m = tiny_agent(tiny_renderer, focus_reward="fg_improve", sigma=0.0, attention_res_blocks=1)
    mask = train_attention_on_left_half(m.attention)
    target = torch.full((1, 3, 32, 32), 0.8)
    fm2 = torch.ones(1, 1, 16, 16)

    def r_focus(x0):
        c0 = torch.zeros(1, 3, 32, 32)
        alpha = torch.zeros(1, 1, 1, 32, 32)
        alpha[..., 8:24, x0:x0 + 8] = 1.0
        cs = alpha * 0.8
        c1 = composite(c0, alpha, cs)
        with torch.no_grad():
            r, parts = m.reward(c0, c1, alpha, cs, target, torch.ones(1, 1, 32, 32), fm2, None, mask=mask)
        return float(parts["r_focus"])
    assert r_focus(4) > r_focus(20)
    c0 = torch.zeros(1, 3, 32, 32)
    a = torch.rand(1, 65, requires_grad=True)
    m.attention.zero_grad(set_to_none=True)
    c1, al, cs = step_canvas(m.renderer, c0, a, 5)
    r, _ = m.reward(c0, c1, al, cs, target, torch.ones(1, 1, 32, 32), fm2, None, mask=mask)
    r.sum().backward()
    assert a.grad.abs().sum() > 0                                   # reaches the action
    assert all(p.grad is None for p in m.attention.parameters())    # but not the module's weights


# ----------------------------------------------------------------------------- DDPG

def run_agent(cfg, steps=6):
    m = prepare_training(PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=32, size=cfg.size)))
    opts = m.configure_optimizers(None)
    loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=3))
    logs = {}
    for _ in range(steps):
        logs = m.training_step(next(loader), fake_context(m, opts))
    return m, logs


def test_ddpg_updates_train_actor_critic_attention_but_not_renderer(tiny_renderer):
    torch.manual_seed(0)
    m = tiny_agent(tiny_renderer, length=32)
    snap = {n: [p.clone() for p in net.parameters()] for n, net in m.networks().items()}
    renderer_before = torch.cat([p.flatten() for p in m.renderer.parameters()]).clone()
    opts = m.configure_optimizers(None)
    loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=3))
    for _ in range(5):
        logs = m.training_step(next(loader), fake_context(m, opts))
    changed = {n: any(not a.equal(b) for a, b in zip(snap[n], net.parameters())) for n, net in m.networks().items()}
    assert changed["actor"] and changed["critic"] and changed["attention"]
    assert changed["actor_target"] and changed["critic_target"]    # soft updates
    assert "renderer" not in m.networks()                           # frozen: neither trained nor saved
    assert all(not p.requires_grad for p in m.renderer.parameters())
    assert torch.equal(torch.cat([p.flatten() for p in m.renderer.parameters()]), renderer_before)
    for k in ("loss_critic", "loss_actor", "loss_attention", "r_m", "r_focus"):
        assert np.isfinite(float(logs[k])), k
    assert m.actor_channels() == 13 and m.critic_channels() == 13
    assert m.replay.c0.dtype == torch.uint8


def test_actor_gradient_reaches_actor_through_frozen_renderer(tiny_renderer):
    m = tiny_agent(tiny_renderer)
    img = torch.rand(2, 3, 32, 32)
    fm17, fm2 = m.masks.masks(img, None, 32, 16)
    c0 = torch.zeros_like(img)
    a = m.act(m.actor, c0, img, fm17, 0)
    c1, al, cs = step_canvas(m.renderer, c0, a, 5)
    r, _ = m.reward(c0, c1, al, cs, img, fm17, fm2, None)
    (-r.mean()).backward()
    assert m.actor.fc.weight.grad is not None and m.actor.fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.renderer.parameters())


def test_critic_target_uses_target_networks_and_discount(tiny_renderer, monkeypatch):
    torch.manual_seed(1)
    m, _ = run_agent(tiny_agent_cfg(tiny_renderer), steps=3)
    seen = {}
    orig = F.mse_loss

    def spy(a, b, *args, **kw):
        seen.setdefault("y", []).append(b.detach().clone())
        return orig(a, b, *args, **kw)
    monkeypatch.setattr(F, "mse_loss", spy)                         # the critic's loss is the last MSE
    g = torch.Generator().manual_seed(5)
    monkeypatch.setattr(m.replay, "sample", lambda b, gen=None, _s=m.replay.sample: _s(b, g))
    opts = m.configure_optimizers(None)
    m.update(fake_context(m, opts))
    y1 = seen["y"][-1]
    with torch.no_grad():                                           # change only the target critic
        m.critic_target.fc.bias.add_(1.0)
    g.manual_seed(5)
    m.update(fake_context(m, opts))
    y2 = seen["y"][-1]
    nd = (y2 - y1)
    assert torch.all((nd.abs() < 1e-3) | ((nd - m.model_cfg.gamma).abs() < 1e-3))   # +gamma*1 unless done
    assert (nd.abs() > 0.1).any()


def test_wgan_baseline_and_no_attention_ablation_run(tiny_renderer):
    torch.manual_seed(0)
    m, logs = run_agent(tiny_agent_cfg(tiny_renderer, reward="wgan", attention=False))
    assert m.actor_channels() == 9 and m.critic_channels() == 12   # LTP's 9-channel actor
    assert "loss_disc" in logs and np.isfinite(logs["loss_critic"].item())
    m, logs = run_agent(tiny_agent_cfg(tiny_renderer, use_focus_reward=False, feature_mask="none"))
    assert "r_focus" not in logs and "r_m" in logs


# ----------------------------------------------------------------------------- resume

def test_sigkill_then_resume_equals_uninterrupted_replay_buffer_included(tmp_path):
    """kill -9 a painting-agent run after a checkpoint taken once its replay buffer holds
    transitions and updates are running; --resume ends with the weights (and replay buffer) of an
    uninterrupted run, so warm-up is not repeated with an empty buffer."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from condsynth import testing
    from condsynth.engine.checkpoint import find_latest
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train
    from condsynth.io.state import load_state, load_tensors

    steps = 30
    raw = testing.tiny_config("painting_agent", tmp_path, tmp_path / "killed", steps=steps, checkpoint_every=3)
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(raw))
    args = [sys.executable, "-m", "condsynth", "train", str(tmp_path / "agent.yaml")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    def newest() -> int:        # what --resume would take: a kill can land between a checkpoint's
        latest = find_latest(tmp_path / "killed")       # rename and the move of the 'latest' pointer
        return int(latest.name.split("_")[1]) if latest is not None else -1

    while time.time() < deadline and newest() < 9:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = find_latest(tmp_path / "killed")
    assert killed_at is not None and 9 <= int(killed_at.name.split("_")[1]) < steps
    state = load_state(killed_at / "train_state")["method"]
    assert state["replay"]["n"] > 0 and state["env_steps"] >= 9       # the buffer was saved, not empty
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr

    raw["train"]["out_dir"] = str(tmp_path / "ref")
    ref = train(build_experiment_config(raw))
    a = load_tensors(find_latest(tmp_path / "killed") / "model.safetensors")
    b = load_tensors(ref.last_checkpoint / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra = load_state(find_latest(tmp_path / "killed") / "train_state")["method"]["replay"]
    rb = load_state(ref.last_checkpoint / "train_state")["method"]["replay"]
    assert ra["n"] == rb["n"] and torch.equal(ra["c0"], rb["c0"]) and torch.equal(ra["act"], rb["act"])

"""Neural painting (thesis Ch. 6): rasteriser, renderer, environment, rewards, DDPG, metrics, data."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from condsynth.models import painting as P
from condsynth.models.base import StepContext

# ----------------------------------------------------------------------------- fixtures

TINY_RENDERER = P.RendererConfig(size=32, fc=[64, 1024], base_channels=4, conv_widths=[8])


def save_renderer(folder, net: P.NeuralRenderer):
    from condsynth.config import to_dict
    from condsynth.io.state import save_tensors
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / "model.safetensors", {f"renderer.{k}": v for k, v in net.state_dict().items()})
    (folder / "config.json").write_text(json.dumps({"config": {"method": "painting_renderer",
                                                               "model": to_dict(net.cfg)}}))
    return folder


@pytest.fixture(scope="module")
def tiny_renderer(tmp_path_factory):
    torch.manual_seed(0)
    return save_renderer(tmp_path_factory.mktemp("renderer"), P.NeuralRenderer(TINY_RENDERER))


def tiny_agent_cfg(renderer, **kw):
    base = dict(renderer=str(renderer), size=32, focus_size=16, net_input_size=32, max_step=3,
                actor_width=4, critic_width=4, attention_width=8, attention_unet_width=4,
                feature_mask="saliency", vgg_weight=0.0, batch_size=6, warmup=2, updates_per_step=1.0,
                replay_capacity=64)
    base.update(kw)
    return P.PaintingAgentConfig(**base)


def make_ctx(method, opts):
    def step(name):
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)
    return StepContext(method.networks(), lambda loss: loss.backward(), step, contextlib.nullcontext,
                       torch.device("cpu"), 0, 0)


# ----------------------------------------------------------------------------- rasteriser

def stroke(**kw):
    p = dict(x0=0.2, y0=0.5, x1=0.5, y1=0.5, x2=0.8, y2=0.5, z0=0.1, v0=1.0, z1=0.1, v1=1.0)
    p.update(kw)
    return np.array([p[k] for k in ("x0", "y0", "x1", "y1", "x2", "y2", "z0", "v0", "z1", "v1")])


def test_rasteriser_range_thickness_and_transparency():
    thin = P.rasterize_stroke(stroke(z0=0.05, z1=0.05), 64)
    thick = P.rasterize_stroke(stroke(z0=0.3, z1=0.3), 64)
    half = P.rasterize_stroke(stroke(z0=0.3, z1=0.3, v0=0.5, v1=0.5), 64)
    assert thin.shape == (64, 64) and thin.min() >= 0 and thick.max() <= 1
    assert thick.sum() > 2 * thin.sum() > 0                       # thickness grows with z
    assert np.allclose(half, 0.5 * thick, atol=1e-6)             # transparency scales the values
    # x is the column, y the row: a horizontal stroke at y = 0.5 covers the middle rows only
    assert thin[:, 20:44].sum(1).argmax() in (31, 32) and thin[:10].sum() == 0


def test_rasteriser_transparency_interpolates_along_the_curve():
    a = P.rasterize_stroke(stroke(z0=0.05, z1=0.05, v0=0.0, v1=1.0), 64)
    cols = a[32]
    assert cols[16] < cols[48]                                   # v grows from P0 to P2


def test_relative_p1_option_changes_the_middle_point():
    p = stroke(y1=1.0)                                           # absolute: P1 at the bottom edge
    assert not np.allclose(P.rasterize_stroke(p, 32), P.rasterize_stroke(p, 32, relative_p1=True))


# ----------------------------------------------------------------------------- renderer

def test_renderer_shapes_and_paper_architecture():
    paper = P.NeuralRenderer(P.RendererConfig())
    n = sum(p.numel() for p in paper.parameters())
    assert 10e6 < n < 12e6                                         # LTP's renderer: ~11M parameters
    out = P.NeuralRenderer(TINY_RENDERER)(torch.rand(3, 10))
    assert out.shape == (3, 32, 32) and out.min() >= 0 and out.max() <= 1


def test_tiny_renderer_learns_the_rasteriser():
    """Agreement on a tiny problem: 64 strokes at 32x32, fitted in a few hundred Adam steps."""
    torch.manual_seed(0)
    ds = P.StrokeDataset(64, seed=3, size=32)
    p = torch.stack([ds[i][0] for i in range(64)])
    a = torch.stack([ds[i][1] for i in range(64)])
    net = P.NeuralRenderer(TINY_RENDERER)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    base = F.mse_loss(a.mean() * torch.ones_like(a), a).item()   # best constant prediction
    for _ in range(250):
        loss = F.mse_loss(net(p), a)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert F.mse_loss(net(p), a).item() < 0.35 * base


def test_renderer_method_training_step(tiny_renderer):
    m = P.RendererMethod(TINY_RENDERER, P.RendererDataConfig(length=16))
    ds = m.build_dataset("train")
    assert len(ds) == 16 and ds[(3, 99)][0].equal(ds[3][0])       # engine keys are (index, seed)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    opts = m.configure_optimizers(None)
    before = [p.clone() for p in m.renderer.parameters()]
    logs = m.training_step(batch, make_ctx(m, opts))
    assert logs["loss_mse"] > 0
    assert any(not b.equal(p) for b, p in zip(before, m.renderer.parameters()))


def test_bce_loss_option_trains_and_reports_mse():
    cfg = P.RendererConfig(**{**vars(TINY_RENDERER), "loss": "bce"})
    m = P.RendererMethod(cfg, P.RendererDataConfig(length=8))
    batch = torch.utils.data.default_collate([m.build_dataset("train")[i] for i in range(4)])
    with torch.no_grad():
        p, a = batch
        expected_mse = F.mse_loss(m.renderer(p), a).item()
        expected_bce = F.binary_cross_entropy(m.renderer(p), a).item()
    logs = m.training_step(batch, make_ctx(m, m.configure_optimizers(None)))
    assert logs["loss"].item() == pytest.approx(expected_bce, rel=1e-4)
    assert logs["loss_mse"].item() == pytest.approx(expected_mse, rel=1e-4)


def test_logits_and_forward_agree():
    net = P.NeuralRenderer(TINY_RENDERER)
    p = torch.rand(5, 13)                                          # colour columns are ignored
    assert torch.allclose(torch.sigmoid(net.logits(p)), net(p[:, :10]))


def test_stroke_bank_holds_the_same_strokes_as_the_stream(tmp_path, capsys):
    from condsynth.cli.main import main
    bank = tmp_path / "strokes.safetensors"
    assert main(["data", "strokes", "--out", str(bank), "--n", "6", "--size", "32", "--seed", "4"]) == 0
    assert "wrote 6 strokes" in capsys.readouterr().out
    stream, stored = P.StrokeDataset(6, seed=4, size=32), P.StrokeBank(str(bank), size=32)
    assert len(stored) == 6
    for i in range(6):
        assert stored[(i, 7)][0].equal(stream[i][0])               # engine keys are (index, seed)
        assert (stored[i][1] - stream[i][1]).abs().max() <= 0.5 / 255 + 1e-6   # 8-bit alpha
    m = P.RendererMethod(TINY_RENDERER, P.RendererDataConfig(bank=str(bank)))
    assert isinstance(m.build_dataset("train"), P.StrokeBank)
    assert isinstance(m.build_dataset("val"), P.StrokeDataset)    # held-out: fresh strokes of seed 1
    # the same command twice: refused without --overwrite, one line, exit 2
    assert main(["data", "strokes", "--out", str(bank), "--n", "2", "--size", "32"]) == 2
    assert "exists" in capsys.readouterr().err


def test_stroke_bank_errors_are_one_clear_line(tmp_path):
    from condsynth.errors import ConfigError
    with pytest.raises(ConfigError, match="stroke bank not found"):
        P.StrokeBank(str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="not a stroke bank"):
        P.StrokeBank(str(junk))
    bank = tmp_path / "b.safetensors"
    P.write_stroke_bank(bank, 2, size=32)
    with pytest.raises(ConfigError, match="the renderer wants 128"):
        P.StrokeBank(str(bank), size=128)


# ----------------------------------------------------------------------------- environment

def test_compositing_equation_and_order():
    canvas = torch.rand(2, 3, 8, 8)
    alpha = torch.rand(2, 2, 1, 8, 8)
    color = torch.rand(2, 2, 3, 1, 1)
    out = P.composite(canvas, alpha, alpha * color)
    ref = canvas
    for j in range(2):                                            # C(t+1) = a_c + (1 - a_r) C(t), in order
        ref = alpha[:, j] * color[:, j] + (1 - alpha[:, j]) * ref
    assert torch.allclose(out, ref)
    swapped = P.composite(canvas, alpha.flip(1), (alpha * color).flip(1))
    assert not torch.allclose(out, swapped)
    zero = torch.zeros_like(alpha)
    assert torch.equal(P.composite(canvas, zero, zero * color), canvas)   # zero alpha: unchanged


def test_step_canvas_uses_five_strokes(tiny_renderer):
    r = P.load_renderer(str(tiny_renderer))
    act = torch.rand(2, 5 * 13)
    c1, alpha, cs = P.step_canvas(r, torch.zeros(2, 3, 32, 32), act, 5)
    assert alpha.shape == (2, 5, 1, 32, 32) and cs.shape == (2, 5, 3, 32, 32) and c1.shape == (2, 3, 32, 32)
    assert torch.allclose(cs, alpha * act.view(2, 5, 13)[:, :, 10:].view(2, 5, 3, 1, 1))


# ----------------------------------------------------------------------------- rewards

def test_masked_l1_reward_sign_and_mask():
    target = torch.zeros(1, 3, 16, 16)
    target[..., 4:12, 4:12] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    fmask = torch.zeros(1, 1, 16, 16)
    fmask[..., 4:12, 4:12] = 1
    c0 = torch.zeros_like(target)
    c1 = c0.clone()
    c1[..., 6:10, 6:10] = target[..., 6:10, 6:10]                  # a stroke copying the target inside M
    r_m = P.masked_l1(c0, target, fmask, 1.0) - P.masked_l1(c1, target, fmask, 1.0)   # Eq. 6.5
    assert r_m.shape == (1,) and r_m.item() > 0
    c2 = c0.clone()
    c2[..., 0:2, 0:2] = 0.7                                        # outside the mask: no reward
    assert (P.masked_l1(c0, target, fmask, 1.0) - P.masked_l1(c2, target, fmask, 1.0)).item() == 0
    # truncation at lambda
    assert P.masked_l1(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2), 0.25).item() == 0.25


def test_feature_masks_shapes_and_range():
    img = torch.rand(2, 3, 32, 32)
    for kind in ("saliency", "none"):
        fm = P.FeatureMasks(kind, vgg_perceptual=False)
        m17, m2 = fm.masks(img, None, 32, 16)
        assert m17.shape == (2, 1, 32, 32) and m2.shape == (2, 1, 16, 16)
        assert m17.min() >= 0 and m17.max() <= 1 + 1e-6


def test_vgg_masks_need_pretrained_weights(monkeypatch, tmp_path):
    from condsynth.errors import MissingWeightsError
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CONDSYNTH_VGG16", raising=False)
    with pytest.raises(MissingWeightsError):
        P.FeatureMasks("vgg")                                      # never silently random


def test_focus_reward_prefers_strokes_inside_the_foreground(tiny_renderer):
    """R_focus(t) = -L_focus(t) (Eq. 6.6/6.7): with an attention module that keeps the foreground
    and suppresses the rest (here: trained briefly on Eq. 6.3), a stroke inside M costs less."""
    torch.manual_seed(0)
    att = P.AttentionModule(width=8, unet_width=4, n_res=1, size=16)
    opt = torch.optim.Adam(att.parameters(), 3e-3)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1                                          # foreground = left half
    for _ in range(150):                                           # Eq. 6.3 on random canvases
        cv = torch.rand(8, 3, 32, 32)
        loss = P.attention_loss(att, cv, mask.expand(8, -1, -1, -1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    att.eval()

    def r_focus(x0):
        c0 = torch.full((1, 3, 32, 32), 0.2)
        alpha = torch.zeros(1, 1, 1, 32, 32)
        alpha[..., 8:24, x0:x0 + 8] = 1.0
        cs = alpha * torch.tensor([0.9, 0.9, 0.1]).view(1, 1, 3, 1, 1)
        c1 = P.composite(c0, alpha, cs)
        with torch.no_grad():
            f0, f1 = att(c0), att(c1)
            blend = P.composite(f0, P.down(alpha.flatten(0, 1), 16).view(1, 1, 1, 16, 16),
                                P.down(cs.flatten(0, 1), 16).view(1, 1, 3, 16, 16))
            return -P.focus_loss(blend, f1, torch.ones(1, 1, 16, 16), 1.0).item()
    assert r_focus(4) > r_focus(20)                                # inside M beats outside M


# ----------------------------------------------------------------------------- DDPG

def run_agent(cfg, steps=6):
    from condsynth.data.painting import PaintingDataConfig
    m = P.PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=32, size=cfg.size))
    opts = m.configure_optimizers(None)
    ds = m.build_dataset("train")
    loader = iter(torch.utils.data.DataLoader(ds, batch_size=3))
    logs = {}
    for _ in range(steps):
        logs = m.training_step(next(loader), make_ctx(m, opts))
    return m, logs


def test_ddpg_updates_train_actor_critic_attention_but_not_renderer(tiny_renderer):
    cfg = tiny_agent_cfg(tiny_renderer)
    torch.manual_seed(0)
    from condsynth.data.painting import PaintingDataConfig
    m = P.PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=32, size=32))
    snap = {n: [p.clone() for p in net.parameters()] for n, net in m.networks().items()}
    opts = m.configure_optimizers(None)
    loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=3))
    for _ in range(5):
        logs = m.training_step(next(loader), make_ctx(m, opts))
    changed = {n: any(not a.equal(b) for a, b in zip(snap[n], net.parameters())) for n, net in m.networks().items()}
    assert changed["actor"] and changed["critic"] and changed["attention"]
    assert changed["actor_target"] and changed["critic_target"]    # soft updates
    assert not changed["renderer"]
    for k in ("loss_critic", "loss_actor", "loss_attention", "r_m", "r_focus"):
        assert np.isfinite(float(logs[k])), k
    assert m.actor_channels() == 13 and m.critic_channels() == 13
    assert m.replay.c0.dtype == torch.uint8


def test_actor_gradient_reaches_actor_through_frozen_renderer(tiny_renderer):
    cfg = tiny_agent_cfg(tiny_renderer)
    from condsynth.data.painting import PaintingDataConfig
    m = P.PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=8, size=32))
    img = torch.rand(2, 3, 32, 32)
    fm17, fm2 = m.masks.masks(img, None, 32, 16)
    c0 = torch.zeros_like(img)
    a = m.act(m.actor, c0, img, fm17, 0)
    c1, al, cs = P.step_canvas(m.renderer, c0, a, 5)
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
    monkeypatch.setattr(P.F, "mse_loss", spy)
    g = torch.Generator().manual_seed(5)
    monkeypatch.setattr(m.replay, "sample", lambda b, gen=None, _s=m.replay.sample: _s(b, g))
    opts = m.configure_optimizers(None)
    m.update(make_ctx(m, opts))
    y1 = seen["y"][-1]
    with torch.no_grad():                                           # change only the target critic
        m.critic_target.fc.bias.add_(1.0)
    g.manual_seed(5)
    m.update(make_ctx(m, opts))
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


# ----------------------------------------------------------------------------- metrics

def test_metrics_thickness_fg_bg_and_mosaic():
    from condsynth.metrics import painting as M
    s = np.random.default_rng(0).random((25, 13))
    assert np.allclose(M.thickness(s), (s[:, 6] + s[:, 8]) / 2)     # parameters 7 and 9 (1-based)
    prof = M.thickness_profile(s, window=10)
    assert len(prof["mean_z"]) == 2 and np.isclose(prof["mean_z"][0], M.thickness(s)[:10].mean())
    t = np.zeros((4, 4, 3))
    c = t.copy()
    c[:2] = 0.5
    mask = np.zeros((4, 4))
    mask[:2] = 1
    e = M.fg_bg_l2(c, t, mask)
    assert np.isclose(e["fg_l2"], 0.25) and e["bg_l2"] == 0
    img = np.random.default_rng(1).random((128, 128, 3))
    mos = M.block_mosaic(img, 20)
    assert len(np.unique(mos[..., 0])) <= 400 and np.isclose(mos.mean(), img.mean())
    assert M.image_errors(mos, img)["l2"] < M.image_errors(np.zeros_like(img), img)["l2"]
    frames = [(50, c), (100, t)]
    assert M.errors_at_counts(frames, t, (50, 100, 200)).keys() == {50, 100}


# ----------------------------------------------------------------------------- data

def test_synthetic_world_is_deterministic_with_exact_masks():
    from condsynth.data.painting import SyntheticPaintWorld, synthetic_scene
    a, m = synthetic_scene(5, 0, 64)
    b, m2 = synthetic_scene(5, 0, 64)
    assert np.array_equal(a, b) and np.array_equal(m, m2) and 0.02 < m.mean() < 0.9
    item = SyntheticPaintWorld(10, 0, 64)[(5, 123)]
    assert item["image"].shape == (3, 64, 64) and item["has_mask"] == 1
    assert torch.equal(item["mask"][0] > 0.5, torch.from_numpy(m))


def test_fg_improve_focus_reward_prefers_foreground_and_has_a_gradient(tiny_renderer):
    """focus_reward='fg_improve': R_focus = D(t) - D(t+1) on the focused canvas; a stroke that copies
    the target inside M earns more than the same stroke outside M, and the reward is differentiable
    in the action through Att(C_{t+1})."""
    from condsynth.data.painting import PaintingDataConfig
    torch.manual_seed(0)
    cfg = tiny_agent_cfg(tiny_renderer, focus_reward="fg_improve", sigma=0.0, attention_res_blocks=1)
    m = P.PaintingAgent(cfg, PaintingDataConfig(sources=["synthetic"], length=8, size=32))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1
    opt = torch.optim.Adam(m.attention.parameters(), 3e-3)
    for _ in range(150):                                           # Eq. 6.3 on random canvases
        cv = torch.rand(8, 3, 32, 32)
        loss = P.attention_loss(m.attention, cv, mask.expand(8, -1, -1, -1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    target = torch.full((1, 3, 32, 32), 0.8)
    fm2 = torch.ones(1, 1, 16, 16)

    def r_focus(x0):
        c0 = torch.zeros(1, 3, 32, 32)
        alpha = torch.zeros(1, 1, 1, 32, 32)
        alpha[..., 8:24, x0:x0 + 8] = 1.0
        cs = alpha * 0.8
        c1 = P.composite(c0, alpha, cs)
        with torch.no_grad():
            r, parts = m.reward(c0, c1, alpha, cs, target, torch.ones(1, 1, 32, 32), fm2, None, mask=mask)
        return float(parts["r_focus"])
    assert r_focus(4) > r_focus(20)
    c0 = torch.zeros(1, 3, 32, 32)
    a = torch.rand(1, 65, requires_grad=True)
    m.attention.zero_grad(set_to_none=True)
    c1, al, cs = P.step_canvas(m.renderer, c0, a, 5)
    r, _ = m.reward(c0, c1, al, cs, target, torch.ones(1, 1, 32, 32), fm2, None, mask=mask)
    r.sum().backward()
    assert a.grad.abs().sum() > 0                                   # reaches the action
    assert all(p.grad is None for p in m.attention.parameters())    # but not the module's weights

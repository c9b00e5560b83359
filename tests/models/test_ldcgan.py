"""LDcGAN: G's shapes and Eq. 4.4 (f_A = 1 returns the input exactly), the tiled age map, D's age concat
after the fourth conv, G_L's prototype targets and its learning, the losses of one step under each switch,
Φ that moves the image and not G, and kill -9 + resume. The contract (one step, resume, export, pipeline)
is in tests/test_contract.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from condsynth import testing
from condsynth.errors import ConfigError
from condsynth.models.ldcgan.landmarks import LandmarkPredictor, group_mean_shapes
from condsynth.models.ldcgan.ldcgan import AgingGenerator, LDcGANConfig, age_map
from condsynth.nn.discriminators import JointDiscriminator


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("ldcgan")


def _inputs(b=2, size=32):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    lm = torch.rand(b, 68, 2, generator=g) * 2 - 1
    return x, torch.tensor([1, 8][:b]), lm


@pytest.mark.parametrize("size,n_i", [(128, 16), (64, 4)])
def test_generator_shapes(size, n_i):
    cfg = LDcGANConfig(image_size=size, n_i=n_i, n_l=n_i, res_blocks=1, landmark_predictor="x")
    g = AgingGenerator(cfg)
    x, t, lm = _inputs(size=size)
    out = g(x, t, lm, lm + 0.1)
    assert out.image.shape == x.shape and out.content.shape == x.shape
    assert out.mask.shape == (2, 1, size, size)
    assert 0 <= float(out.mask.min()) and float(out.mask.max()) <= 1
    # the bottleneck: 16 N_i channels at size / 8 (256 x 16 x 16 at 128^2, spec §4.4), f_attn2 at size / 4
    h = g.res(g.down(g.encoder(g._input(x, torch.nn.functional.one_hot(t, 10).float()))))
    assert h.shape[1:] == (16 * n_i, size // 8, size // 8)
    f1, f2 = g.attention(lm, lm + 0.1)
    assert f1.shape[1:] == (n_i, size // 8, size // 8) and f2.shape[1:] == (8 * n_i, size // 4, size // 4)
    assert torch.equal(g.attention(lm, lm)[0], torch.zeros_like(f1))      # f_attn1 = 0 when L* = L


def test_a_mask_of_one_returns_the_input_exactly():
    g = AgingGenerator(LDcGANConfig(image_size=32, n_i=2, n_l=2, res_blocks=1, landmark_predictor="x"))
    with torch.no_grad():
        g.to_mask.weight.zero_()
        g.to_mask.bias.fill_(100.0)          # sigmoid(100) == 1.0 in float32
    x, t, lm = _inputs()
    out = g(x, t, lm, lm)
    assert torch.equal(out.image, x)                                  # Eq. 4.4: (1 - 1) f_C + 1 * I


def test_age_map_has_the_one_hot_at_the_group_channel():
    m = age_map(torch.nn.functional.one_hot(torch.tensor([7]), 10).float(), 4)
    assert m.shape == (1, 10, 4, 4)
    assert torch.equal(m[0, 7], torch.ones(4, 4)) and float(m.sum()) == 16


def test_discriminator_concatenates_the_age_after_the_fourth_conv():
    d = JointDiscriminator.preset("ldcgan")                               # 128^2, N_d = 64
    assert d.trunk.out_channels == 512 and d.trunk.out_size == 16
    assert d.head.cond[0][0].in_channels == 522                           # 8 N_d + 10 (spec §8)
    out = d(torch.zeros(2, 3, 128, 128), torch.eye(10)[:2])
    assert out.uncond.shape == (2,) and out.cond.shape == (2,) and out.aux.shape == (2, 10)


def test_prototype_targets_are_the_mean_shift_and_zero_for_the_same_group():
    base = np.random.default_rng(0).uniform(-0.5, 0.5, (68, 2))
    shift = np.zeros((68, 2))
    shift[48:68, 1] = 0.05                                                 # group 9: a lower mouth
    shapes = np.stack([base] * 4 + [base + shift] * 4)
    groups = np.array([0] * 4 + [9] * 4)
    means = group_mean_shapes(shapes, groups)
    g = LandmarkPredictor(16, 8)
    g.group_means.copy_(torch.from_numpy(means).float())
    lm = torch.from_numpy(base).float()[None]
    same = g.prototype(lm, torch.tensor([3]), torch.tensor([3]))
    assert torch.equal(same, lm)
    aged = g.prototype(lm, torch.tensor([0]), torch.tensor([9]))
    d = (aged - lm)[0].numpy()
    assert d[48:, 1].mean() > 0.02 and abs(d[:48]).max() < abs(d[48:, 1]).mean()


def test_landmark_predictor_learns_the_prototype_shift(workdir):
    raw = testing.tiny_config("ldcgan_landmarks", workdir)
    raw["model"].update(hidden=64, latent=16, lr=3e-3, lambda_latent=0.0)     # the target term alone
    method = testing.build_method(raw)
    ctx = testing.fake_context(method)
    batch = testing.first_batch(method, n=8)
    first = None
    for _ in range(400):
        loss = float(method.training_step(batch, ctx)["loss_target"])
        first = first if first is not None else loss
    lm, s = batch["landmarks"], batch["group"]
    target = method.G_L.prototype(lm, s, torch.full_like(s, 9))
    err = float((method.predict(lm, torch.full_like(s, 9)) - target).abs().mean())
    start = float((lm - target).abs().mean())
    assert err < 0.5 * start, (err, start)


@pytest.mark.parametrize("switches,present,absent", [
    ({}, {"loss_G", "loss_RG", "loss_cls", "loss_Rcls", "loss_id", "loss_cycle", "loss_mask", "loss_RD_G"}, set()),
    ({"dual": False}, {"loss_G", "loss_cls", "loss_id"}, {"loss_RG", "loss_Rcls", "loss_cycle", "loss_RD_G"}),
    ({"mask_reg": False}, {"loss_G"}, {"loss_mask"}),
    ({"use_landmarks": False, "landmark_predictor": ""}, {"loss_G", "loss_cycle"}, set()),
    ({"phi": "none"}, {"loss_G"}, {"loss_id"}),
])
def test_one_step_under_each_switch(switches, present, absent, workdir):
    raw = testing.tiny_config("ldcgan", workdir)
    raw["model"].update(switches)
    method = testing.build_method(raw)
    if switches.get("use_landmarks") is False:
        assert method.frozen_networks() == {} and method.G_L is None
        assert not hasattr(method.G, "landmark_encoder")
    before = {k: v.clone() for k, v in method.G.state_dict().items()}
    logs = method.training_step(testing.first_batch(method), testing.fake_context(method))
    assert present <= set(logs) and not (absent & set(logs))
    assert all(math.isfinite(float(v)) for v in logs.values())
    assert any(not torch.equal(before[k], v) for k, v in method.G.state_dict().items())


def test_landmark_path_needs_the_predictor():
    with pytest.raises(ValueError, match="landmark_predictor"):
        LDcGANConfig(image_size=64)
    with pytest.raises(ValueError, match="multiple of 16"):
        LDcGANConfig(image_size=72, use_landmarks=False)


def test_data_and_model_sizes_must_agree(workdir):
    raw = testing.tiny_config("ldcgan", workdir)
    raw["data"]["image_size"] = 64
    with pytest.raises(ConfigError, match="image_size"):
        testing.build_method(raw)


def test_identity_loss_moves_the_image_not_the_generator(workdir):
    method = testing.build_method(testing.tiny_config("ldcgan", workdir))
    x, t, _ = _inputs()
    fake = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    buffers = {k: v.clone() for k, v in method.G.named_buffers()}
    loss = method.phi_loss(x, fake, torch.nn.functional.one_hot(t, 10).float())
    loss.backward()
    assert float(loss) > 0 and fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert all(p.grad is None for p in method.G.parameters())
    assert all(torch.equal(buffers[k], v) for k, v in method.G.named_buffers())    # BN statistics untouched


def test_kill_9_then_resume_finishes_the_run(workdir, tmp_path):
    raw = testing.tiny_config("ldcgan", workdir, tmp_path / "run", steps=6, checkpoint_every=2)
    killed_at, _, final = testing.sigkill_then_resume(raw, kill_after=2)
    assert killed_at >= 2 and final.name == "step_00000006"


def test_age_classifier_pretraining_steps_leave_the_generator_alone(workdir):
    raw = testing.tiny_config("ldcgan", workdir)
    raw["model"]["d_a_pretrain_steps"] = 1
    method = testing.build_method(raw)
    g_before = {k: v.clone() for k, v in method.G.state_dict().items()}
    d_before = {k: v.clone() for k, v in method.D.state_dict().items()}
    logs = method.training_step(testing.first_batch(method), testing.fake_context(method, step=0))
    assert set(logs) == {"loss_D_A_pretrain"}
    assert all(torch.equal(g_before[k], v) for k, v in method.G.state_dict().items())
    assert any(not torch.equal(d_before[k], v) for k, v in method.D.state_dict().items())
    logs = method.training_step(testing.first_batch(method), testing.fake_context(method, step=1))
    assert "loss_G" in logs


def test_the_dual_pass_joins_at_dual_start_step(workdir):
    raw = testing.tiny_config("ldcgan", workdir)
    raw["model"]["dual_start_step"] = 3
    method = testing.build_method(raw)
    dual_losses = {"loss_RG", "loss_Rcls", "loss_cycle", "loss_RD_G"}
    before = method.training_step(testing.first_batch(method), testing.fake_context(method, step=2))
    after = method.training_step(testing.first_batch(method), testing.fake_context(method, step=3))
    assert "loss_G" in before and not dual_losses & set(before)
    assert dual_losses <= set(after)

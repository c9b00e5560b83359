"""AVWnet and AT-net (thesis ch. 5, spec §2.4-2.9): shapes, the mask blends, the recurrent state across chunks,
the losses' pieces, and a few steps that lower the losses."""

import numpy as np
import pytest
import torch

from condsynth import testing
from condsynth.models.avwnet.avwnet import mouth_box_mask, reader_input, regression_loss
from condsynth.models.avwnet.nets import ATNet, AudioStage1, AVDiscriminator, AVWnetGenerator

SMALL = dict(audio_channels=(2, 2, 2, 2, 4), audio_fc=8)


def _inputs(b=2, t=3, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 3, s, s, generator=g) * 2 - 1, torch.randn(b, t, 1, 28, 12, generator=g),
            torch.rand(b, t, 68, 2, generator=g) - 0.5, torch.rand(b, 68, 2, generator=g) - 0.5)


@pytest.mark.parametrize("size", [32, 64])
def test_generator_shapes_at_both_stages(size):
    g = AVWnetGenerator(size, 8, **SMALL).eval()
    out = g(*_inputs(s=size))
    assert out.stage0.shape == (2, 3, 3, size // 2, size // 2) and out.stage1.shape == (2, 3, 3, size, size)
    assert out.gray0.shape == (2, 3, 1, size // 2, size // 2) and out.gray1.shape == (2, 3, 1, size, size)
    # attention maps with the channels of the features they blend: i^32 (N_i) and i^64 (N_i / 2)
    assert out.attention0.shape == (2, 3, 8, size // 4, size // 4)
    assert out.attention1.shape == (2, 3, 4, size // 2, size // 2)
    assert out.state.shape == (2, 32, size // 16, size // 16)          # ConvGRU hidden 4 N_i
    assert out.stage1.abs().max() <= 1
    one = AVWnetGenerator(size, 8, attention_channels="one", **SMALL).eval()(*_inputs(s=size))
    assert one.attention0.shape[2] == 1 and one.attention1.shape[2] == 1


def test_paper_widths_match_the_spec_shapes():
    """Spec §2.3 at N_i = 128: i^64 64@64², i^32 128@32², i* 512@8², E_a 256@8², E_l 256@8², 12288 audio features."""
    g = AVWnetGenerator(128, 128)
    i64, i32, i_star, l_star = g.encode_example(torch.zeros(1, 3, 128, 128), torch.zeros(1, 68, 2))
    assert (i64.shape, i32.shape, i_star.shape, l_star.shape) == ((1, 64, 64, 64), (1, 128, 32, 32),
                                                                  (1, 512, 8, 8), (1, 256, 8, 8))
    assert g.E_a(torch.zeros(1, 2, 1, 28, 12)).shape == (1, 2, 256, 8, 8)
    assert AudioStage1().out_features == 512 * 12 * 2
    assert g.bottleneck[0].in_channels == 1024 and g.rnn.cell.hidden == 512


def test_landmark_motion_coordinates_encodes_the_motion_itself():
    """``landmark_motion="coordinates"`` (ours): E_m sees L_k - L*; Eq. 5.1's E_l(L_k) - E_l(L*) has no E_m."""
    assert AVWnetGenerator(32, 8, **SMALL).E_m is None
    torch.manual_seed(0)
    g = AVWnetGenerator(32, 8, landmark_motion="coordinates", **SMALL).eval()
    seen = []
    g.E_m.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    ex, a, lm, ex_lm = _inputs()
    with torch.no_grad():
        g(ex, a, lm, ex_lm)
    torch.testing.assert_close(seen[0], lm - ex_lm[:, None])
    with pytest.raises(ValueError, match="features or coordinates"):
        AVWnetGenerator(32, 8, landmark_motion="heatmaps", **SMALL)


def test_masks_blend_with_the_example_face():
    """f_gray = 0 keeps the example face at each stage (Eq. 5.5); f_gray = 1 gives the generated colour."""
    g = AVWnetGenerator(32, 8, **SMALL).eval()
    ex, a, lm, ex_lm = _inputs()
    with torch.no_grad():
        for head in (g.head0, g.head1):
            head.gray.weight.zero_()
            head.gray.bias.fill_(-50.0)
    out = g(ex, a, lm, ex_lm)
    torch.testing.assert_close(out.stage1, ex[:, None].expand_as(out.stage1))
    ex0 = torch.nn.functional.interpolate(ex, size=16, mode="area")
    torch.testing.assert_close(out.stage0, ex0[:, None].expand_as(out.stage0))
    with torch.no_grad():
        g.head1.gray.bias.fill_(50.0)
    out = g(ex, a, lm, ex_lm)
    colour = torch.tanh(g.head1.colour(torch.zeros(1, 2, 32, 32)))  # shape check only
    assert colour.shape[1] == 3
    assert not torch.allclose(out.stage1, ex[:, None].expand_as(out.stage1))


def test_without_attention_the_maps_are_ones_and_ignore_the_example_features():
    g = AVWnetGenerator(32, 8, use_attention=False, **SMALL).eval()
    out = g(*_inputs())
    assert torch.all(out.attention0 == 1) and torch.all(out.attention1 == 1)


def test_the_recurrent_state_carries_across_chunks():
    """A long sequence in chunks with the ConvGRU state carried equals one pass; without the carry it does not."""
    torch.manual_seed(0)
    g = AVWnetGenerator(32, 8, **SMALL).eval()
    ex, a, lm, ex_lm = _inputs(t=8)
    whole = g(ex, a, lm, ex_lm)
    enc = g.encode_example(ex, ex_lm)
    first = g(ex, a[:, :5], lm[:, :5], ex_lm, encoded=enc)
    second = g(ex, a[:, 5:], lm[:, 5:], ex_lm, state=first.state, encoded=enc)
    torch.testing.assert_close(torch.cat([first.stage1, second.stage1], 1), whole.stage1, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(second.state, whole.state, atol=1e-5, rtol=1e-4)
    fresh = g(ex, a[:, 5:], lm[:, 5:], ex_lm)
    assert (fresh.state - whole.state).abs().max() > 1e-3
    assert not torch.equal(fresh.stage1, whole.stage1[:, 5:])


def test_the_audio_changes_the_frames():
    torch.manual_seed(0)
    g = AVWnetGenerator(32, 8, **SMALL).eval()
    ex, a, lm, ex_lm = _inputs()
    one, other = g(ex, a, lm, ex_lm), g(ex, a * 3 + 1, lm, ex_lm)
    assert (g.E_a(a) - g.E_a(a * 3 + 1)).abs().max() > 1e-3
    assert not torch.equal(one.state, other.state) and not torch.equal(one.stage1, other.stage1)


def test_discriminator_heads_and_the_landmark_residual():
    d = AVDiscriminator(32, 4, cond_dim=8, audio_channels=(2, 2, 2, 2, 2), preset="avwnet_d0").eval()
    x, a, w = torch.randn(5, 3, 32, 32), torch.randn(5, 1, 28, 12), torch.randn(4, 1, 28, 12)
    ex = torch.rand(5, 68, 2)
    logits, lm = d(x, a, w, ex)
    assert logits.uncond.shape == (5,) and logits.cond.shape == (5,) and logits.wrong.shape == (4,)
    _, lm0 = d(x, a)
    torch.testing.assert_close(lm - lm0, ex)                          # + L* as a residual
    d1 = AVDiscriminator(128, 64)                                      # D_1 at N_d = 64: 1024 @ 4x4 before the heads
    assert d1.d.trunk.out_channels == 1024 and d1.d.trunk.out_size == 4
    assert AVDiscriminator(64, 64, preset="avwnet_d0").d.trunk.out_size == 4     # D_0: 64² -> 16² -> 4²


def test_mouth_box_mask_and_the_regression_weights():
    lm = torch.zeros(1, 68, 2)
    lm[0, 48:68] = torch.tensor([[-0.25, 0.25], [0.25, 0.5]]).repeat(10, 1)     # x in [-0.25, 0.25], y in [0.25, 0.5]
    m = mouth_box_mask(lm, 32, 0)[0, 0]
    ys, xs = np.nonzero(m.numpy())
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (20, 23, 12, 19)
    assert mouth_box_mask(lm, 32, 2)[0, 0].sum() > m.sum()
    p, t = torch.zeros(1, 68, 2), torch.zeros(1, 68, 2)
    p[0, 50, 1] = 1
    q = torch.zeros(1, 68, 2)
    q[0, 10, 1] = 1
    assert regression_loss(p, t, 100.0) == pytest.approx(100 * regression_loss(q, t, 100.0).item())


def test_reader_input_matches_the_lip_data():
    """The differentiable view equals the lip reader's data preprocessing (mouth box, luma, area resize)."""
    from condsynth.data.talking import LipDataConfig, _gray_rois
    import cv2
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (4, 8, 8, 3)).astype(np.float32)
    crops = np.stack([cv2.resize(c, (64, 64), interpolation=cv2.INTER_CUBIC) for c in coarse]).clip(0, 255)
    crops = crops.astype(np.uint8)
    cfg = LipDataConfig(roi="mouth", size=32)
    want = (_gray_rois(crops, cfg).astype(np.float32) / 255 - 0.4161) / 0.1688
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()[None] / 127.5 - 1
    got = reader_input(x, "mouth", cfg.mouth_box, 32)[0, 0].numpy()
    assert np.abs(got - want).mean() < 0.05 and np.abs(got - want).max() < 0.25     # in STAF std units


def test_atnet_shapes_and_state():
    net = ATNet(6, (2, 2, 2, 2, 2), 8, 4, 4, 4, 4, 2).eval()
    a = torch.randn(2, 6, 1, 28, 12)
    out, state = net(torch.randn(2, 6), a)
    assert out.shape == (2, 6, 6)
    c = torch.randn(2, 6)
    whole, _ = net(c, a)
    first, st = net(c, a[:, :3])
    second, _ = net(c, a[:, 3:], st)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_a_few_steps_lower_the_reconstruction_and_word_losses(tmp_path):
    torch.manual_seed(0)
    raw = testing.tiny_config("avwnet", tmp_path)
    raw["model"].update(use_adversarial=False, res_dropout=0.0, rnn_dropout=0.0, lr=3e-3)
    m = testing.build_method(raw)
    ctx = testing.fake_context(m)
    batch = testing.first_batch(m, n=2)
    losses = [m.training_step(batch, ctx) for _ in range(10)]
    first = losses[0]["loss_l1_1"] + losses[0]["loss_pix1"]
    last = losses[-1]["loss_l1_1"] + losses[-1]["loss_pix1"]
    assert last < 0.7 * first
    assert losses[-1]["loss_word"] < losses[0]["loss_word"]
    assert m.reader is not None and not m.reader.training                # frozen, BN in eval mode
    assert all(not p.requires_grad for p in m.reader.parameters())


def test_full_model_step_updates_both_discriminators(tmp_path):
    torch.manual_seed(0)
    m = testing.build_method(testing.tiny_config("avwnet", tmp_path))
    before = {k: v.clone() for k, v in m.D1.state_dict().items() if v.dtype.is_floating_point}
    logs = m.training_step(testing.first_batch(m), testing.fake_context(m))
    assert {"loss_D0", "loss_D1", "loss_R0_D", "loss_G1", "loss_R1", "loss_word", "loss_pix0"} <= set(logs)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    assert any(not torch.equal(before[k], v) for k, v in m.D1.state_dict().items() if k in before)


def test_table_5_2_switches_remove_their_terms(tmp_path):
    raw = testing.tiny_config("avwnet", tmp_path)
    raw["model"].update(use_regression=False, use_word_loss=False, lip_reader="")
    m = testing.build_method(raw)
    logs = m.training_step(testing.first_batch(m), testing.fake_context(m))
    assert "loss_word" not in logs and "loss_R1" not in logs and "loss_D1" in logs
    raw["model"].update(use_adversarial=False)
    m = testing.build_method(raw)
    assert set(m.networks()) == {"G"}
    raw["model"].update(use_word_loss=True, lip_reader="")
    with pytest.raises(Exception, match="lip_reader"):
        testing.build_method(raw)


def test_atnet_learns_a_few_steps(tmp_path):
    torch.manual_seed(0)
    m = testing.build_method(testing.tiny_config("avwnet_atnet", tmp_path))
    m.model_cfg.lr = 1e-2
    ctx = testing.fake_context(m)
    batch = testing.first_batch(m, n=4)
    losses = [float(m.training_step(batch, ctx)["loss_pca"]) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_gray_bias_init_starts_near_the_example_face(tmp_path):
    raw = testing.tiny_config("avwnet", tmp_path)
    raw["model"].update(gray_bias_init=-2.0)
    m = testing.build_method(raw)
    assert torch.all(m.G.head0.gray.bias == -2.0) and torch.all(m.G.head1.gray.bias == -2.0)

"""pix2pix's networks as the paper describes them, and its losses."""

import torch

from condsynth.engine.config import load_experiment_config
from condsynth.losses.gan import GANLoss, gradient_penalty
from condsynth.nn.discriminators import PatchDiscriminator, receptive_field
from condsynth.nn.unet import UNetGenerator
from condsynth.pipelines.translate import pad_to_multiple


def measured_receptive_field(d: PatchDiscriminator, size: int = 128) -> int:
    """Width of the input region that influences one output cell, found by backprop."""
    d.eval()
    x = torch.zeros(1, d.blocks[0][0].in_channels, size, size, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


def test_patchgan_receptive_fields_match_the_paper():
    assert receptive_field(3) == 70 and receptive_field(1) == 16 and receptive_field(5) == 286
    # measured (not just computed): the default discriminator sees 70x70 patches
    for n_layers, expect in [(1, 16), (3, 70)]:
        d = PatchDiscriminator(6, ndf=4, n_layers=n_layers, norm="none")
        torch.nn.init.constant_(d.blocks[0][0].weight, 0.1)
        assert measured_receptive_field(d, 160) <= expect
        assert measured_receptive_field(d, 160) >= expect - 3  # border taps of a 4x4 s2 conv may be zero-gradient


def test_unet_paper_layout_256():
    g = UNetGenerator(3, 3, ngf=64, num_downs=8)
    widths = [m[-1].num_features if isinstance(m[-1], torch.nn.BatchNorm2d) else m[-1].out_channels
              for m in g.down]
    assert widths == [64, 128, 256, 512, 512, 512, 512, 512]  # C64-C128-C256-C512-C512-C512-C512-C512
    dropouts = [any(isinstance(layer, torch.nn.Dropout) for layer in m) for m in g.up]
    assert dropouts == [True, True, True, False, False, False, False, False]  # CD512 x3 then C
    g.eval()
    with torch.no_grad():
        y = g(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 3, 256, 256) and y.abs().max() <= 1


def test_gan_losses():
    logits = torch.tensor([[2.0, -1.0]])
    vanilla = GANLoss("vanilla")
    assert torch.isclose(vanilla(logits, True), torch.nn.functional.softplus(-logits).mean())
    assert torch.isclose(GANLoss("lsgan")(logits, False), (logits ** 2).mean())
    assert torch.isclose(GANLoss("hinge")(logits, True), torch.relu(1 - logits).mean())
    assert torch.isclose(GANLoss("hinge")(logits, True, for_discriminator=False), -logits.mean())
    # multi-scale lists are averaged
    assert torch.isclose(vanilla([logits, logits * 0], True), (vanilla(logits, True) + vanilla(logits * 0, True)) / 2)


def test_gradient_penalty_of_linear_critic():
    w = torch.randn(1, 3, 4, 4)
    critic = lambda x: (x * w).sum((1, 2, 3))  # noqa: E731  gradient is w everywhere
    gp = gradient_penalty(critic, torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4))
    assert torch.isclose(gp, (w.norm() - 1) ** 2, rtol=1e-5)


def test_training_step_reduces_l1_on_one_batch(scenes16):
    """A sanity check that the pieces connect: repeated steps on one batch fit it."""
    from condsynth import testing

    cfg = load_experiment_config(None, ["method=pix2pix", f"data.root={scenes16}", "data.load_size=16",
                                        "data.crop_size=16", "model.ngf=8", "model.ndf=8", "model.num_downs=4",
                                        "model.dropout=0", "model.d_layers=1"])
    m = testing.build_method(cfg.to_dict())
    batch = testing.first_batch(m, n=4)
    ctx = testing.fake_context(m, m.configure_optimizers(cfg.train))
    first = m.training_step(batch, ctx)["loss_G_L1"]
    for _ in range(60):
        last = m.training_step(batch, ctx)["loss_G_L1"]
    assert last < 0.7 * first


def test_pad_to_multiple_crops_back():
    x = torch.randn(1, 3, 37, 53)
    padded, (h, w) = pad_to_multiple(x, 16)
    assert padded.shape[-2:] == (48, 64) and (h, w) == (37, 53)
    assert torch.equal(padded[..., :h, :w], x)
    tiny, _ = pad_to_multiple(torch.randn(1, 3, 3, 3), 16)  # smaller than the padding: replicate
    assert tiny.shape[-2:] == (16, 16)

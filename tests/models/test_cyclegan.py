"""CycleGAN: its loss terms by hand, the image pool's rule and state, a learning step, both directions at
inference (pipeline and CLI), the one-line refusal of BtoA on a one-way model, and kill -9 + resume with
the pools included. The contract (one step, resume, export, DDP) is in tests/test_contract.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsynth import testing
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.errors import ConfigError
from condsynth.losses.gan import GANLoss, ImagePool
from condsynth.models.cyclegan import CycleGANConfig, discriminator_loss, generator_losses


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cyclegan")


@pytest.fixture(scope="module")
def trained_run(workdir):
    raw = testing.tiny_config("cyclegan", workdir, workdir / "trained", steps=2)
    train(build_experiment_config(raw))
    return workdir / "trained"


# ----------------------------------------------------------------------------- losses by hand

def test_generator_losses_match_a_hand_computation():
    cfg = CycleGANConfig(lambda_cycle=10.0, lambda_identity=0.5)
    real_a, real_b = torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 2)
    rec_a = torch.tensor([[[[0.5, -0.5]]]])          # |.| mean 0.5
    rec_b = torch.tensor([[[[1.0, 0.0]]]])           # |rec_b - 1| mean 0.5
    idt_a = torch.tensor([[[[0.2, 0.2]]]])           # |idt_a - 0| mean 0.2
    idt_b = torch.tensor([[[[1.4, 1.0]]]])           # |idt_b - 1| mean 0.2
    d_fake_b = torch.tensor([[[[0.0, 1.0]]]])        # LSGAN: mean((d - 1)^2) = 0.5
    d_fake_a = torch.tensor([[[[0.5, 0.5]]]])        # 0.25
    g = generator_losses(GANLoss("lsgan"), cfg, real_a=real_a, real_b=real_b, rec_a=rec_a, rec_b=rec_b,
                         d_fake_a=d_fake_a, d_fake_b=d_fake_b, idt_a=idt_a, idt_b=idt_b)
    expect = {"G_A_GAN": 0.5, "G_B_GAN": 0.25, "cycle_A": 10 * 0.5, "cycle_B": 10 * 0.5,
              "idt_A": 0.5 * 10 * 0.2, "idt_B": 0.5 * 10 * 0.2}
    for k, v in expect.items():
        assert float(g[k]) == pytest.approx(v, abs=1e-6), k
    assert float(g["G"]) == pytest.approx(sum(expect.values()), abs=1e-5)
    # identity off: no identity terms
    off = generator_losses(GANLoss("lsgan"), CycleGANConfig(lambda_identity=0.0), real_a=real_a, real_b=real_b,
                           rec_a=rec_a, rec_b=rec_b, d_fake_a=d_fake_a, d_fake_b=d_fake_b)
    assert "idt_A" not in off and float(off["G"]) == pytest.approx(0.5 + 0.25 + 10, abs=1e-5)


def test_discriminator_loss_is_half_the_lsgan_sum():
    d_real, d_fake = torch.tensor([0.0, 2.0]), torch.tensor([1.0, -1.0])
    # 0.5 * (mean((d_real - 1)^2) + mean(d_fake^2)) = 0.5 * (1 + 1)
    assert float(discriminator_loss(GANLoss("lsgan"), d_real, d_fake, 0.5)) == pytest.approx(1.0)


def test_identity_with_unequal_channels_is_a_config_error(workdir):
    raw = testing.tiny_config("cyclegan", workdir)
    raw["model"]["out_channels"] = 1
    with pytest.raises(ConfigError, match="lambda_identity"):
        build_experiment_config(raw)
    raw["model"]["lambda_identity"] = 0.0
    assert build_experiment_config(raw).model.out_channels == 1


# ----------------------------------------------------------------------------- the image pool

def _images(n, start=0):
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, 2, 2).clone()


def test_pool_fills_then_returns_a_stored_image_half_of_the_time():
    pool = ImagePool(3)
    first = _images(3)
    assert torch.equal(pool.query(first), first) and len(pool) == 3           # filling: the new ones back
    torch.manual_seed(0)
    stored = {0.0, 1.0, 2.0}
    swapped = 0
    for i in range(3, 403):
        out = float(pool.query(_images(1, i))[0, 0, 0, 0])
        if out != i:                                  # an old image came back and the new one took its place
            assert out in stored
            stored = (stored - {out}) | {float(i)}
            swapped += 1
        assert {float(img[0, 0, 0]) for img in pool.images} == stored and len(pool) == 3
    assert 160 < swapped < 240                        # p = 1/2 over 400 draws


def test_pool_follows_the_reference_rule_with_the_global_torch_rng():
    pool = ImagePool(2)
    pool.query(_images(2))
    torch.manual_seed(7)
    out = pool.query(_images(6, 10))[:, 0, 0, 0].tolist()
    torch.manual_seed(7)                             # replay the reference's draws by hand
    ref, store = [], [0.0, 1.0]
    for i in range(10, 16):
        if float(torch.rand(())) > 0.5:
            k = int(torch.randint(2, ()))
            ref.append(store[k])
            store[k] = float(i)
        else:
            ref.append(float(i))
    assert out == ref


def test_pool_state_round_trip_continues_identically():
    from condsynth.io.state import pack, unpack

    a = ImagePool(4)
    a.query(_images(3))
    empty = ImagePool(4).state_dict()
    assert empty["n"] == 0
    skeleton, tensors = pack(a.state_dict())              # the checkpoint's pickle-free form
    b = ImagePool(4)
    b.load_state_dict(unpack(skeleton, tensors))
    torch.manual_seed(3)
    out_a = a.query(_images(8, 20))
    torch.manual_seed(3)
    out_b = b.query(_images(8, 20))
    assert torch.equal(out_a, out_b) and len(b) == 4
    with pytest.raises(ValueError, match="size 4"):
        ImagePool(5).load_state_dict(a.state_dict())
    assert torch.equal(ImagePool(0).query(_images(2)), _images(2))    # size 0: pass-through


# ----------------------------------------------------------------------------- training

def test_training_steps_lower_the_cycle_loss_on_one_repeated_batch(workdir):
    raw = testing.tiny_config("cyclegan", workdir)
    raw["model"]["lr"] = 2e-3                           # a clear drop within a few steps
    method = testing.build_method(raw)
    batch = testing.first_batch(method)
    ctx = testing.fake_context(method)
    cycle = []
    for _ in range(8):
        logs = method.training_step(batch, ctx)
        cycle.append(float(logs["loss_cycle_A"] + logs["loss_cycle_B"]))
    assert cycle[-1] < 0.7 * cycle[0] and cycle[-1] == min(cycle), cycle
    assert len(method.pool_a) == 3 and len(method.pool_b) == 3          # tiny pool (3) is full
    assert set(method.extra_state()) == {"pool_a", "pool_b"}


# ----------------------------------------------------------------------------- directions at inference

def _photo(size=16):
    return (np.random.default_rng(1).random((size, size, 3)) * 255).astype(np.uint8)


def test_pipeline_direction_picks_the_generator(trained_run):
    from condsynth.io.images import tensor_to_uint8, uint8_to_tensor
    from condsynth.pipelines import load_pipeline

    pipe = load_pipeline(trained_run, device="cpu")
    img = _photo()
    a2b, b2a = pipe(img, direction="AtoB").image, pipe(img, direction="BtoA").image
    assert np.array_equal(pipe(img).image, a2b) and not np.array_equal(a2b, b2a)
    with torch.no_grad():
        expect = tensor_to_uint8(pipe.method.G_B(uint8_to_tensor(img)[None])[0])
    assert np.array_equal(b2a, expect)
    assert set(pipe.method.inference_networks) == {"G_A", "G_B"}


def test_translate_cli_both_directions_and_export_keeps_both(trained_run, tmp_path):
    import json

    from condsynth.cli.main import main
    from condsynth.io.images import read_image, save_image

    save_image(tmp_path / "in" / "x.png", _photo(20))            # any size: padded to the stride
    for d in ("AtoB", "BtoA"):
        assert main(["translate", "--checkpoint", str(trained_run), str(tmp_path / "in"), "--out",
                     str(tmp_path / d), "--direction", d]) == 0
        assert (tmp_path / d / "x.png").is_file()
    assert not np.array_equal(read_image(tmp_path / "AtoB" / "x.png"), read_image(tmp_path / "BtoA" / "x.png"))
    assert main(["export", str(trained_run), "--out", str(tmp_path / "exp")]) == 0
    assert set(json.loads((tmp_path / "exp" / "pipeline.json").read_text())["components"]) >= {"G_A", "G_B"}
    assert main(["translate", "--checkpoint", str(tmp_path / "exp"), str(tmp_path / "in"), "--out",
                 str(tmp_path / "exp-out"), "--direction", "BtoA"]) == 0


def test_export_one_direction(trained_run, tmp_path, capsys):
    """`export --part BtoA` writes G_B alone; that export translates BtoA by default and refuses AtoB."""
    import json

    from condsynth.cli.main import main
    from condsynth.io.images import read_image, save_image

    save_image(tmp_path / "in" / "x.png", _photo(20))
    assert main(["export", str(trained_run), "--out", str(tmp_path / "b2a"), "--part", "BtoA"]) == 0
    meta = json.loads((tmp_path / "b2a" / "pipeline.json").read_text())
    assert set(meta["components"]) == {"G_B"} and meta["networks"] == ["G_B"] and meta["part"] == "BtoA"
    assert main(["translate", "--checkpoint", str(tmp_path / "b2a"), str(tmp_path / "in"), "--out",
                 str(tmp_path / "o1")]) == 0
    assert main(["translate", "--checkpoint", str(trained_run), str(tmp_path / "in"), "--out",
                 str(tmp_path / "o2"), "--direction", "BtoA"]) == 0
    assert np.array_equal(read_image(tmp_path / "o1" / "x.png"), read_image(tmp_path / "o2" / "x.png"))
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(tmp_path / "b2a"), str(tmp_path / "in"), "--out",
                 str(tmp_path / "o3"), "--direction", "AtoB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the BtoA generator only" in err[0], err
    assert not (tmp_path / "o3").exists()
    assert main(["export", str(trained_run), "--out", str(tmp_path / "bad"), "--part", "sideways"]) == 2
    assert "no export part 'sideways' (one of AtoB, BtoA)" in capsys.readouterr().err


def test_direction_btoa_on_a_pix2pix_checkpoint_is_one_line(workdir, tmp_path, capsys):
    from condsynth.cli.main import main
    from condsynth.io.images import save_image

    run = tmp_path / "p2p"
    train(build_experiment_config(testing.tiny_config("pix2pix", workdir, run, steps=1)))
    save_image(tmp_path / "x.png", _photo())
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                 "--direction", "BtoA"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a 'pix2pix' model translates one way only" in err[0], err
    assert "--direction BtoA needs a two-way model such as cyclegan" in err[0]
    assert not (tmp_path / "o").exists()
    assert main(["translate", "--checkpoint", str(run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                 "--direction", "AtoB"]) == 0


# ----------------------------------------------------------------------------- resume

def test_sigkill_then_resume_equals_uninterrupted_pools_included(tmp_path):
    """kill -9 a CycleGAN run after a checkpoint taken once its pools are full (so the 50/50 draws are
    running); --resume ends with the weights and pools of an uninterrupted run."""
    from condsynth.io.state import load_state, load_tensors

    steps = 24
    raw = testing.tiny_config("cyclegan", tmp_path, tmp_path / "killed", steps=steps, checkpoint_every=3)
    killed_step, killed_state, last = testing.sigkill_then_resume(raw, kill_after=6)
    assert 6 <= killed_step < steps and last.name == f"step_{steps:08d}", (killed_step, last)
    assert killed_state["pool_a"]["n"] == 3 and killed_state["pool_b"]["n"] == 3   # full pools were saved

    raw["train"]["out_dir"] = str(tmp_path / "ref")
    ref = train(build_experiment_config(raw)).last_checkpoint
    a, b = load_tensors(last / "model.safetensors"), load_tensors(ref / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    pools = load_state(last / "train_state")["method"], load_state(ref / "train_state")["method"]
    for name in ("pool_a", "pool_b"):
        assert torch.equal(pools[0][name]["images"], pools[1][name]["images"]), name


def test_translate_with_tiles_equals_the_whole_image(trained_run, tmp_path):
    """`pipe(image, tile=N)` runs G layer by layer on tiles (nn/tiled.py) and gives the whole image's result."""
    from condsynth.pipelines import load_pipeline

    pipe = load_pipeline(trained_run, device="cpu")
    img = _photo(40)
    for direction in ("AtoB", "BtoA"):
        whole = pipe(img, direction=direction).image.astype(int)
        tiled = pipe(img, direction=direction, tile=12).image.astype(int)
        assert np.abs(whole - tiled).max() <= 1          # uint8 outputs: at most a rounding step apart

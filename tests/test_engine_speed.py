"""The engine's CPU speed options (docs/performance.md): bf16 autocast on CPU, the optimizers'
implementation, lazily freed gradients; each keeps resume exact and changes nothing it should not."""

from pathlib import Path

import pytest
import torch

from condsynth.engine import checkpoint as ckpt
from condsynth.engine.config import load_experiment_config
from condsynth.engine.trainer import Trainer, set_optimizer_impl, train
from condsynth.io.state import load_tensors

from conftest import tiny_pix2pix_overrides

CONFIG = Path(__file__).resolve().parents[1] / "configs/pix2pix/scenes64.yaml"


def weights(run_dir) -> dict:
    return load_tensors(ckpt.find_latest(run_dir) / "model.safetensors")


def run(scenes16, out, steps=4, **extra) -> dict:
    train(load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, out, steps=steps, **extra)))
    return weights(out)


def test_bf16_autocast_on_cpu(scenes16, tmp_path, monkeypatch):
    seen = []
    for precision in ("fp32", "bf16"):
        trainer = Trainer(load_experiment_config(CONFIG, tiny_pix2pix_overrides(
            scenes16, tmp_path / precision, **{"train.precision": precision})))
        real = trainer.method.training_step

        def spy(batch, ctx, real=real):
            with ctx.autocast():
                seen.append((torch.is_autocast_enabled("cpu"), trainer.method.G(batch["A"]).dtype))
            return real(batch, ctx)

        monkeypatch.setattr(trainer.method, "training_step", spy)
        logs = trainer.train_step(next(iter(trainer._loader())))
        assert all(isinstance(v, float) for v in logs.values())
    assert seen == [(False, torch.float32), (True, torch.bfloat16)]


def test_bf16_learns_like_fp32_and_resumes_exactly(scenes16, tmp_path):
    a = run(scenes16, tmp_path / "fp32", steps=4)
    b = run(scenes16, tmp_path / "bf16", steps=4, **{"train.precision": "bf16"})
    key = "G.down.0.0.weight"
    assert not torch.equal(a[key], b[key])                          # bf16 is really used ...
    assert (a[key] - b[key]).abs().max() < 0.05 * a[key].abs().max()   # ... and learns the same step
    part = tmp_path / "part"
    run(scenes16, part, steps=2, **{"train.precision": "bf16"})
    train(load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, part, steps=4,
                                                                **{"train.precision": "bf16"})), resume=True)
    c = weights(part)
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_lazy_zero_grad_is_exactly_eager(scenes16, tmp_path):
    lazy = run(scenes16, tmp_path / "lazy", **{"train.grad_clip": 1.0})
    eager = run(scenes16, tmp_path / "eager", **{"train.grad_clip": 1.0, "train.zero_grad": "eager"})
    assert all(torch.equal(lazy[k], eager[k]) for k in lazy)


def test_optimizer_impl():
    params = [torch.nn.Parameter(torch.randn(3))]
    adam = torch.optim.Adam(params)
    assert set_optimizer_impl(adam, "auto") == "fused"
    assert adam.param_groups[0]["fused"] and not adam.param_groups[0]["foreach"]
    assert set_optimizer_impl(adam, "plain") == "plain"
    assert adam.param_groups[0]["fused"] is False and adam.param_groups[0]["foreach"] is False
    rms = torch.optim.RMSprop(params)                   # no fused kernel: foreach
    assert set_optimizer_impl(rms, "fused") == "foreach" and rms.param_groups[0]["foreach"]
    lbfgs = torch.optim.LBFGS(params)                   # neither
    assert set_optimizer_impl(lbfgs, "auto") == "plain"
    assert set_optimizer_impl(adam, "method") == "method"
    # the fused and the looped update agree to float rounding
    outs = []
    for impl in ("fused", "plain"):
        p = torch.nn.Parameter(torch.ones(64))
        opt = torch.optim.Adam([p], lr=0.1)
        set_optimizer_impl(opt, impl)
        for i in range(3):
            p.grad = torch.linspace(-1, 1, 64) * (i + 1)
            opt.step()
        outs.append(p.detach())
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("impl", ["fused", "plain"])
def test_resumed_optimizer_keeps_the_configured_impl(scenes16, tmp_path, impl):
    out = tmp_path / impl
    run(scenes16, out, steps=3, **{"train.optimizer_impl": impl})
    trainer = Trainer(load_experiment_config(CONFIG, tiny_pix2pix_overrides(
        scenes16, out, steps=4, **{"train.optimizer_impl": impl})))
    assert trainer.resume()
    assert trainer.optimizers["G"].param_groups[0]["fused"] is (impl == "fused")

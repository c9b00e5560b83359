"""Stand-alone training loop for the painting methods, used before/besides the engine.

    python bench/bench_painting_quicktrain.py renderer OUT_DIR --minutes 25 [key=value ...]

It drives the same :class:`~condsynth.models.base.Method` objects as ``condsynth train`` with a
plain StepContext (CPU, one process), saves ``OUT_DIR/model.safetensors`` + ``config.json`` every
few minutes, and logs held-out MSE to ``OUT_DIR/log.jsonl``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

from condsynth.config import from_dict, to_dict
from condsynth.io.atomic import atomic_write_text
from condsynth.io.state import save_tensors
from condsynth.models.base import StepContext


def make_ctx(method, opts, step):
    nets = method.networks()

    def backward(loss):
        loss.backward()

    def do_step(name):
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)

    return StepContext(nets, backward, do_step, contextlib.nullcontext, torch.device("cpu"), step, 0)


def save(method, out: Path, meta: dict):
    tensors = {}
    for name, net in method.networks().items():
        for k, v in net.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    save_tensors(out / "model.safetensors", tensors)
    atomic_write_text(out / "config.json", json.dumps(meta, indent=1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["renderer", "agent"])
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=25)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--lr-drop", type=float, default=0.7, help="fraction of time after which LR /10")
    ap.add_argument("--init", default=None, help="model.safetensors to start from")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_intermixed_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)      # as every condsynth command does (engine TrainConfig.flush_denormal)
    torch.manual_seed(0)
    from condsynth.models import get_method_class
    cls = get_method_class("painting_renderer" if a.which == "renderer" else "painting_agent")
    model_raw, data_raw = {}, {}
    for ov in a.overrides:
        k, v = ov.split("=", 1)
        sec, key = k.split(".", 1)
        import yaml
        (model_raw if sec == "model" else data_raw)[key] = yaml.safe_load(v)
    mcfg = from_dict(cls.ModelConfig, model_raw, "model.")
    dcfg = from_dict(cls.DataConfig, data_raw, "data.")
    method = cls(mcfg, dcfg)
    if a.init:
        from condsynth.io.state import load_tensors
        sd = load_tensors(a.init)
        for name, net in method.networks().items():
            sub = {k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")}
            if sub:
                net.load_state_dict(sub)
    opts = method.configure_optimizers(None)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"config": {"method": cls.name, "model": to_dict(mcfg), "data": to_dict(dcfg)},
            "quicktrain": {"batch_size": a.batch, "minutes": a.minutes, "cmd": " ".join(sys.argv)}}
    ds = method.build_dataset("train")
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                         drop_last=True, persistent_workers=a.workers > 0)
    held = None
    if a.which == "renderer":
        hds = method.build_dataset("test")
        held = next(iter(torch.utils.data.DataLoader(hds, batch_size=512)))
    t0 = time.time()
    step, last_save, dropped = 0, t0, False
    log = open(out / "log.jsonl", "a")
    done = False
    while not done:
        for batch in loader:
            ctx = make_ctx(method, opts, step)
            logs = method.training_step(batch, ctx)
            step += 1
            el = time.time() - t0
            if not dropped and el > a.lr_drop * a.minutes * 60:
                for o in opts.values():
                    for g in o.param_groups:
                        g["lr"] *= 0.1
                dropped = True
            if step % 100 == 0 or el > a.minutes * 60:
                rec = {"step": step, "t": round(el, 1), **{k: float(v) for k, v in logs.items()}}
                if held is not None:
                    method.eval()
                    rec.update({f"heldout_{k}": v for k, v in method.evaluate(held).items()})
                    method.train()
                log.write(json.dumps(rec) + "\n")
                log.flush()
            if time.time() - last_save > 180 or el > a.minutes * 60:
                meta["step"] = step
                save(method, out, meta)
                last_save = time.time()
            if el > a.minutes * 60:
                done = True
                break


if __name__ == "__main__":
    main()

"""pix2pix benchmarks on this machine.

    python bench/bench_pix2pix.py learning   [--steps 1500] [--out bench/out/pix2pix]
    python bench/bench_pix2pix.py throughput [--size 256] [--batch 1] [--iters 5]
    python bench/bench_pix2pix.py evaluate   --checkpoint CKPT --data DIR

learning:   makes the scenes world at 64x64, trains configs/pix2pix/scenes64.yaml for a fixed budget
            and reports L1 and SSIM on held-out test pairs for the trained generator against the
            untrained one (same architecture, same seed), plus an image grid to look at.
throughput: training steps/s and inference images/s at 256x256 with the paper's networks, the
            FLOPs of one training step (counted by torch.utils.flop_counter), and the share of this
            CPU's matmul peak measured in the same run (these machines are noisy: compare within a run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from condsynth.data.synth import scenes  # noqa: E402
from condsynth.engine.checkpoint import load_for_inference  # noqa: E402
from condsynth.engine.config import load_experiment_config  # noqa: E402
from condsynth.engine.logging import make_grid  # noqa: E402
from condsynth.engine.trainer import train  # noqa: E402
from condsynth.io.images import save_image  # noqa: E402
from condsynth.metrics.image_quality import ssim  # noqa: E402
from condsynth import testing  # noqa: E402
from condsynth.models.pix2pix import Pix2Pix  # noqa: E402


@torch.no_grad()
def held_out_scores(method: Pix2Pix, data_root: Path, split: str = "test") -> dict:
    method.prepare_for_inference()
    ds = method.build_dataset("eval") if split == "val" else _split(method, split)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    torch.manual_seed(0)  # dropout noise at test time
    fake = method.G(batch["A"])
    l1 = (fake - batch["B"]).abs().flatten(1).mean(1)
    s = ssim((fake + 1) / 2, (batch["B"] + 1) / 2, data_range=1.0)
    return {"n": len(ds), "L1": float(l1.mean()), "L1_std": float(l1.std()), "SSIM": float(s.mean()),
            "SSIM_std": float(s.std()), "_batch": batch, "_fake": fake}


def _split(method, split):
    from condsynth.data.translation import PairedImageDataset
    return PairedImageDataset(method.data_cfg, split, train=False)


def learning(args) -> dict:
    out = Path(args.out)
    data = Path(getattr(args, "data", None) or out / "scenes64")
    if not data.exists():
        scenes.write_dataset(data, args.n, size=64, seed=0, progress=False)
    cfg = load_experiment_config(ROOT / "configs/pix2pix/scenes64.yaml",
                                 [f"data.root={data}", f"train.out_dir={out / 'run'}", f"train.steps={args.steps}",
                                  f"train.schedule.constant_steps={args.steps // 2}",
                                  f"train.schedule.decay_steps={args.steps - args.steps // 2}",
                                  "train.progress=false", f"train.threads={args.threads}",
                                  *(getattr(args, "set", None) or [])])
    torch.manual_seed(cfg.train.seed)
    untrained = Pix2Pix(cfg.model, cfg.data)  # the trainer builds its G from the same seed
    t0 = time.perf_counter()
    result = train(cfg, resume=args.resume)
    seconds = time.perf_counter() - t0
    trained, _, _ = load_for_inference(result.last_checkpoint, use_ema=False)
    before, after = held_out_scores(untrained, data), held_out_scores(trained, data)
    grid = make_grid({"labels": after["_batch"]["A"], "untrained": before["_fake"], "trained": after["_fake"],
                      "photo": after["_batch"]["B"]}, max_rows=8)
    save_image(out / "grid.png", grid)
    report = {"steps": result.step, "train_seconds": round(seconds, 1), "test_pairs": after["n"],
              "untrained": {k: round(v, 4) for k, v in before.items() if not k.startswith("_")},
              "trained": {k: round(v, 4) for k, v in after.items() if not k.startswith("_")},
              "grid": str(out / "grid.png")}
    print(json.dumps(report, indent=2))
    return report


def matmul_peak_flops(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def throughput(args) -> dict:
    cfg = load_experiment_config(ROOT / "configs/pix2pix/paper256.yaml", [])
    m = testing.build_method(cfg.to_dict())
    ctx = testing.fake_context(m, m.configure_optimizers(cfg.train))
    s = args.size
    batch = {"A": torch.randn(args.batch, 3, s, s).clamp(-1, 1), "B": torch.randn(args.batch, 3, s, s).clamp(-1, 1)}
    with FlopCounterMode(display=False) as counter:
        m.training_step(batch, ctx)
    step_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            m.G(batch["A"])
    infer_flops = counter.get_total_flops()

    peak_before = matmul_peak_flops()
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        m.training_step(batch, ctx)
        times.append(time.perf_counter() - t)
    m.prepare_for_inference()
    itimes = []
    with torch.no_grad():
        for _ in range(args.iters):
            t = time.perf_counter()
            m.G(batch["A"])
            itimes.append(time.perf_counter() - t)
    peak = max(peak_before, matmul_peak_flops())
    train_s, infer_s = min(times), min(itimes)
    report = {
        "size": s, "batch": args.batch, "threads": torch.get_num_threads(),
        "train_step_s": round(train_s, 3), "train_images_per_s": round(args.batch / train_s, 3),
        "infer_images_per_s": round(args.batch / infer_s, 3),
        "train_step_GFLOP": round(step_flops / 1e9, 1), "infer_GFLOP": round(infer_flops / 1e9, 1),
        "matmul_peak_GFLOPs": round(peak / 1e9, 1),
        "train_GFLOPs": round(step_flops / train_s / 1e9, 1),
        "train_share_of_peak": round(step_flops / train_s / peak, 3),
        "infer_share_of_peak": round(infer_flops / infer_s / peak, 3),
    }
    print(json.dumps(report, indent=2))
    return report


def evaluate(args) -> dict:
    method, _, _ = load_for_inference(args.checkpoint)
    method.data_cfg.root = args.data
    scores = held_out_scores(method, Path(args.data))
    report = {k: round(v, 4) for k, v in scores.items() if not k.startswith("_")}
    print(json.dumps(report, indent=2))
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    lp = sub.add_parser("learning")
    lp.add_argument("--steps", type=int, default=1500)
    lp.add_argument("--n", type=int, default=1200)
    lp.add_argument("--out", default=str(ROOT / "bench/out/pix2pix"))
    lp.add_argument("--threads", type=int, default=1)
    lp.add_argument("--resume", action="store_true")
    lp.add_argument("--data", default=None, help="the scenes64 folder (default: OUT/scenes64; made if missing)")
    lp.add_argument("--set", nargs="*", default=[], help="more config overrides, e.g. train.precision=bf16")
    tp = sub.add_parser("throughput")
    tp.add_argument("--size", type=int, default=256)
    tp.add_argument("--batch", type=int, default=1)
    tp.add_argument("--iters", type=int, default=5)
    tp.add_argument("--threads", type=int, default=0)
    ep = sub.add_parser("evaluate")
    ep.add_argument("--checkpoint", required=True)
    ep.add_argument("--data", required=True)
    args = p.parse_args()
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    {"learning": learning, "throughput": throughput, "evaluate": evaluate}[args.what](args)


if __name__ == "__main__":
    main()

"""CPU speed of the engine's training step, measured side by side (issue 17, docs/performance.md).

    python bench/bench_speed.py pix2pix  [--rounds 12] [--threads 1 2] [--out bench/out/speed]
    python bench/bench_speed.py renderer [--rounds 12] [--threads 1 2] [--batch 64]
    python bench/bench_speed.py profile  [--steps 3] [--threads 1]
    python bench/bench_speed.py learning [--steps 600] [--seeds 0 1] [--out bench/out/speed]

pix2pix:  one training step of pix2pix at 256x256, batch 1, with the paper's networks (U-Net-256,
          70x70 PatchGAN, BatchNorm, Adam), for each contender: ``plain`` is the step written the
          plain way (forward, D step, G step, torch's default Adam: zero_grad before each backward,
          as pytorch-CycleGAN-and-pix2pix does); ``engine-before`` is the engine as it was before
          issue 17 (fp32, the method's own Adam, zero_grad right after each step); ``engine-fp32``
          and ``engine-bf16`` are the engine's defaults with train.precision fp32 and bf16. The
          contenders run one step each in turn, round after round, at each thread count in turn,
          in one process (the machine is shared: only comparisons within a round are fair); the
          report gives per-contender medians and the median of the per-round ratios to ``plain``.
          FLOPs per step come from torch.utils.flop_counter, and the share of this CPU's matmul
          peak from a 2048^2 fp32 and bf16 ``torch.mm`` timed in the same rounds.
renderer: the neural renderer's training step (painting_renderer, configs/painting/renderer.yaml:
          the paper-size LTP renderer, batch 64) through the engine, before vs fp32 vs bf16.
profile:  torch.profiler tables of the engine step and the plain step (what the engine adds).
learning: pix2pix on the scenes world at 64x64 (configs/pix2pix/scenes64.yaml, through
          bench/bench_pix2pix.py learning) for a fixed budget with the engine as before, with
          today's fp32 defaults and (on a CPU with bf16 instructions) at bf16, two seeds each (the
          seed spread is the noise), then held-out L1 and SSIM on the test pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from condsynth.data.synth import scenes  # noqa: E402
from condsynth.engine.config import load_experiment_config  # noqa: E402
from condsynth.engine.trainer import Trainer  # noqa: E402
from condsynth.nn.blocks import set_requires_grad  # noqa: E402

ENGINE = {  # contender -> train.* overrides
    "engine-before": ["train.precision=fp32", "train.optimizer_impl=method", "train.zero_grad=eager",
                      "train.cpu_allocator=default"],
    "engine-fp32": ["train.precision=fp32"],
    "engine-bf16": ["train.precision=bf16"],
    # the ablation (--contenders): one change at a time on top of engine-before
    "engine-fused": ["train.zero_grad=eager", "train.cpu_allocator=default"],
    "engine-fused-lazy": ["train.cpu_allocator=default"],
}
MAIN = ["engine-before", "engine-fp32", "engine-bf16"]


def bf16_native() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def load_info() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def matmul_gflops(dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def make_trainer(config: Path, overrides: list[str], out: Path) -> Trainer:
    cfg = load_experiment_config(config, [f"train.out_dir={out}", "train.progress=false", "train.threads=0",
                                          *overrides])
    return Trainer(cfg)


class PlainPix2Pix:
    """The pix2pix step written the plain way, on the same networks (pytorch-CycleGAN-and-pix2pix's
    ``optimize_parameters``): torch's default Adam, zero_grad before each backward."""

    def __init__(self, trainer: Trainer):
        m = trainer.method    # only its networks (train.cpu_allocator=default: a plain process)
        self.G, self.D, self.c = m.G, m.D, m.model_cfg
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=self.c.lr, betas=(self.c.beta1, self.c.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=self.c.lr, betas=(self.c.beta1, self.c.beta2))

    def __call__(self, batch):
        x, y = batch["A"], batch["B"]
        fake = self.G(x)
        set_requires_grad(self.D, True)
        self.opt_D.zero_grad()
        pred_fake = self.D(torch.cat([x, fake.detach()], 1))
        loss_d_fake = F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
        pred_real = self.D(torch.cat([x, y], 1))
        loss_d_real = F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        self.opt_D.step()
        set_requires_grad(self.D, False)
        self.opt_G.zero_grad()
        pred_fake = self.D(torch.cat([x, fake], 1))
        loss_g = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake)) + \
            self.c.lambda_l1 * F.l1_loss(fake, y)
        loss_g.backward()
        self.opt_G.step()


def scenes256(out: Path) -> Path:
    data = out / "scenes256"
    if not data.exists():
        scenes.write_dataset(data, 10, size=256, seed=0, progress=False)
    return data


def pix2pix_contender(name: str, data: Path):
    """(one step of contender ``name``, the batch it takes)."""
    config = ROOT / "configs/pix2pix/paper256.yaml"
    base = [f"data.root={data}", "data.direction=AtoB", "data.layout=auto", "train.image_every=0"]
    with tempfile.TemporaryDirectory() as tmp:
        if name == "plain":
            step = PlainPix2Pix(make_trainer(config, base + ["train.cpu_allocator=default"], Path(tmp) / name))
        else:
            step = make_trainer(config, base + ENGINE[name], Path(tmp) / name).train_step
    torch.manual_seed(0)
    batch = {"A": torch.rand(1, 3, 256, 256) * 2 - 1, "B": torch.rand(1, 3, 256, 256) * 2 - 1}
    return step, batch


def renderer_contender(name: str, batch_size: int):
    from condsynth.data.strokes import StrokeDataset
    config = ROOT / "configs/painting/renderer.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        step = make_trainer(config, ["train.eval_every=0", "train.image_every=0", *ENGINE[name]],
                            Path(tmp) / name).train_step
    ds = StrokeDataset(batch_size, 0, 128)
    batch = torch.utils.data.default_collate([ds[i] for i in range(batch_size)])
    return step, batch


def worker(args) -> None:
    """One contender in its own process (its own allocator settings), driven over stdin/stdout:
    a line "T" runs one step at T threads and answers its seconds; "flops" answers the FLOPs."""
    step, batch = (pix2pix_contender(args.contender, Path(args.data)) if args.kind == "pix2pix"
                   else renderer_contender(args.contender, args.batch))
    print("ready", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line == "flops":
            print(count_flops(step, batch), flush=True)
            continue
        torch.set_num_threads(int(line))
        t0 = time.perf_counter()
        step(batch)
        print(time.perf_counter() - t0, flush=True)


class Remote:
    def __init__(self, kind: str, contender: str, args):
        import subprocess
        cmd = [sys.executable, __file__, "_worker", "--kind", kind, "--contender", contender,
               "--data", str(getattr(args, "data", "") or ""), "--batch", str(args.batch)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": str(max(args.threads))})
        while (line := self.proc.stdout.readline()) and line.strip() != "ready":
            if not line:
                raise RuntimeError(f"worker {contender} failed")

    def ask(self, what) -> float:
        self.proc.stdin.write(f"{what}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def __call__(self, threads: int) -> float:
        return self.ask(threads)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def contenders(kind: str, names: list[str], args) -> dict:
    if not bf16_native():
        names = [n for n in names if "bf16" not in n]
    return {n: Remote(kind, n, args) for n in names}


def race(steps: dict, rounds: int, threads: list[int], baseline: str, warmup: int = 2) -> dict:
    """Each contender one step per turn; per thread count: medians and per-round ratios."""
    times = {t: {n: [] for n in steps} for t in threads}
    peaks = {t: {"fp32": [], "bf16": []} for t in threads}
    for r in range(warmup + rounds):
        for t in threads:
            torch.set_num_threads(t)
            order = list(steps) if r % 2 == 0 else list(steps)[::-1]   # no contender always first
            for name in order:
                dt = steps[name](t)
                if r >= warmup:
                    times[t][name].append(dt)
            if r >= warmup:
                peaks[t]["fp32"].append(matmul_gflops(torch.float32))
                # without bf16 instructions torch runs bf16 matmuls ~100x slower: a small one says so
                peaks[t]["bf16"].append(matmul_gflops(torch.bfloat16, 2048 if bf16_native() else 256))
        print(f"round {r + 1}/{warmup + rounds}: {load_info()}", flush=True)
    out = {}
    for t in threads:
        base = times[t][baseline]
        out[t] = {"matmul_peak_GFLOPs": {k: round(max(v), 1) for k, v in peaks[t].items()}, "contenders": {}}
        for name, ts in times[t].items():
            ratios = [b / x for b, x in zip(base, ts)]    # > 1: faster than the baseline
            out[t]["contenders"][name] = {
                "median_s": round(statistics.median(ts), 4), "steps_per_s": round(1 / statistics.median(ts), 3),
                "speedup_vs_" + baseline: round(statistics.median(ratios), 3),
                "speedup_range": [round(min(ratios), 3), round(max(ratios), 3)]}
    return out


def count_flops(step, batch) -> int:
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return counter.get_total_flops()


def add_peak_share(report: dict, flops: int) -> None:
    for t, r in report["threads"].items():
        for name, c in r["contenders"].items():
            peak = r["matmul_peak_GFLOPs"]["bf16" if "bf16" in name else "fp32"]
            c["GFLOPs"] = round(flops / c["median_s"] / 1e9, 1)
            c["share_of_matmul_peak"] = round(flops / c["median_s"] / 1e9 / peak, 3)


def run_race(kind: str, names: list[str], baseline: str, args, what: str, path: Path) -> dict:
    steps = contenders(kind, names, args)
    try:
        flops = int(steps[baseline].ask("flops"))
        report = {"what": what, "cpu": cpu_info(), "bf16_instructions": bf16_native(), "load_before": load_info(),
                  "GFLOP_per_step": round(flops / 1e9, 2), "rounds": args.rounds,
                  "threads": race(steps, args.rounds, args.threads, baseline)}
    finally:
        for s in steps.values():
            s.close()
    report["load_after"] = load_info()
    add_peak_share(report, flops)
    return finish(report, path)


def cpu_info() -> str:
    flags = set()
    name = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} CPUs, {' '.join(isa)}; torch {torch.__version__}"


def bench_pix2pix(args) -> dict:
    out = Path(args.out)
    args.data = str(scenes256(out))
    return run_race("pix2pix", args.contenders or ["plain", *MAIN], "plain", args, "pix2pix training step 256x256 batch 1",
                    out / "pix2pix_speed.json")


def bench_renderer(args) -> dict:
    return run_race("renderer", args.contenders or MAIN, "engine-before", args,
                    f"neural renderer training step, paper size, batch {args.batch}", Path(args.out) / "renderer_speed.json")


def profile(args) -> dict:
    from torch.profiler import ProfilerActivity, profile as torch_profile
    torch.set_num_threads(args.threads[0])
    data = scenes256(Path(args.out))
    tables = {}
    for name in args.contenders:
        step, batch = pix2pix_contender(name, data)
        for _ in range(2):
            step(batch)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step(batch)
        tables[name] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
        print(f"==== {name}\n{tables[name]}", flush=True)
    return tables


def learning(args) -> dict:
    import bench_pix2pix
    out = Path(args.out)
    results = {}
    variants = [v for v in MAIN if bf16_native() or "bf16" not in v]   # bf16 is 10-100x slower without it
    for seed in args.seeds:
        for variant in variants:
            key = f"{variant}-seed{seed}"
            ns = argparse.Namespace(steps=args.steps, n=args.n, out=str(out / "learning" / key), threads=args.threads,
                                    resume=False, data=str(out / "learning" / "scenes64"),
                                    set=[*ENGINE[variant], f"train.seed={seed}", "train.image_every=0"])
            r = bench_pix2pix.learning(ns)
            results[key] = {"L1": r["trained"]["L1"], "SSIM": r["trained"]["SSIM"], "train_seconds": r["train_seconds"]}
    summary = {}
    for variant in variants:
        runs = [v for k, v in results.items() if k.startswith(variant + "-seed")]
        summary[variant] = {m: round(statistics.mean(r[m] for r in runs), 4) for m in ("L1", "SSIM")}
        summary[variant]["spread"] = {m: round(max(r[m] for r in runs) - min(r[m] for r in runs), 4)
                                      for m in ("L1", "SSIM")}
    report = {"what": f"pix2pix scenes64, {args.steps} steps, held-out test pairs", "runs": results,
              "summary": summary, "load": load_info()}
    return finish(report, out / "learning.json")


def finish(report: dict, path: Path) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    wp = sub.add_parser("_worker")
    wp.add_argument("--kind", choices=["pix2pix", "renderer"])
    wp.add_argument("--contender")
    wp.add_argument("--data")
    wp.add_argument("--batch", type=int, default=64)
    for name in ("pix2pix", "renderer", "profile", "learning"):
        sp = sub.add_parser(name)
        sp.add_argument("--out", default=str(ROOT / "bench/out/speed"))
        sp.add_argument("--threads", type=int, nargs="+", default=[1, 2] if name in ("pix2pix", "renderer") else [1])
        sp.add_argument("--rounds", type=int, default=12)
        sp.add_argument("--batch", type=int, default=64)
        sp.add_argument("--steps", type=int, default=600 if name == "learning" else 3)
        sp.add_argument("--rows", type=int, default=25)
        sp.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
        sp.add_argument("--n", type=int, default=1200)
        sp.add_argument("--contenders", nargs="+", default=["plain", "engine-before", "engine-fp32"]
                        if name == "profile" else None)
    args = p.parse_args()
    if args.what == "_worker":
        return worker(args)
    if args.what == "learning":
        args.threads = args.threads[0]
    {"_worker": worker, "pix2pix": bench_pix2pix, "renderer": bench_renderer, "profile": profile, "learning": learning}[args.what](args)


if __name__ == "__main__":
    main()

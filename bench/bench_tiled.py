"""Tiled vs whole-image inference of pix2pixHD's global generator on a 1024x512 label map.

    python bench/bench_tiled.py [--ngf 64] [--blocks 9] [--width 1024 --height 512] [--tiles 256 512]
                                [--threads 1] [--out bench/out/tiled.json]

G1 as in pix2pixHD (spec-translation §2.8): ResnetGenerator(36 -> 3, ngf, n_down 4, ``--blocks``
residual blocks, instance norm, reflection padding); 36 input channels = 35 one-hot labels + the
instance edge map. Random weights (PyTorch's default init, so the output is not near 0) and a
random one-hot label map with an edge map: timing and memory do not depend on the values.

Each configuration (``whole``, ``tile=N``) runs in a fresh subprocess: the model and input are
built, a small warm-up runs, the peak-RSS counter is reset (``/proc/self/clear_refs`` 5), then one
timed forward. ``peak_rss_mb`` is VmHWM after the forward, ``forward_extra_mb`` the peak above the
RSS before it (weights, input and interpreter excluded). Outputs go through .npy files so the
parent reports ``max_abs_diff`` of each tiled output against the whole-image one. Prints JSON.
With glibc's default settings freed tile buffers partly stay in the heap and count in VmHWM;
``--malloc-trim`` returns them, so the peak is live memory (the same settings for every config).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def child(args) -> dict:
    """One configuration, in this (fresh) process."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from condsynth.nn.resnet_generator import ResnetGenerator
    from condsynth.nn.tiled import tiled_forward

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = ResnetGenerator(36, 3, ngf=args.ngf, n_down=4, n_blocks=args.blocks).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 35, (1, args.height // 16, args.width // 16), generator=g)
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2)        # blocky regions, like a label map
    onehot = torch.nn.functional.one_hot(labels, 35).permute(0, 3, 1, 2).float()
    edges = torch.zeros_like(labels, dtype=torch.float32)
    edges[:, 1:] += (labels[:, 1:] != labels[:, :-1]).float()
    edges[:, :, 1:] += (labels[:, :, 1:] != labels[:, :, :-1]).float()
    x = torch.cat([onehot, edges.clamp(max=1)[:, None]], 1) * 2 - 1

    def run(inp):
        with torch.no_grad():
            return net(inp) if args.tile == 0 else tiled_forward(net, inp, tile=args.tile)

    run(x[..., :64, :128])                                                  # warm-up (allocator, kernels)
    rss_before = _status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")                       # VmHWM := VmRSS
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    y = run(x)
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    np.save(args.save, y.numpy())
    return {"config": "whole" if args.tile == 0 else f"tile={args.tile}", "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak, 1), "forward_extra_mb": round(peak - rss_before, 1) if reset else None,
            "rss_before_mb": round(rss_before, 1), "output_std": round(float(y.std()), 4)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--tiles", type=int, nargs="+", default=[256, 512])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--malloc-trim", action="store_true",
                   help="children run with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ at 64 KiB, so freed tile "
                        "buffers go back to the OS and VmHWM counts live memory, not glibc's retained heap")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--tile", type=int, default=None, help=argparse.SUPPRESS)     # child: 0 = whole image
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tile is not None:
        print(json.dumps(child(args)))
        return {}

    import numpy as np
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    if args.malloc_trim:
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for tile in [0, *args.tiles]:
            save = str(Path(tmp) / f"out{tile}.npy")
            cmd = [sys.executable, __file__, "--tile", str(tile), "--save", save, "--ngf", str(args.ngf),
                   "--blocks", str(args.blocks), "--width", str(args.width), "--height", str(args.height),
                   "--threads", str(args.threads)]
            res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
            outputs[tile] = np.load(save, allow_pickle=False)
            if tile:
                res["max_abs_diff"] = float(np.abs(outputs[tile] - outputs[0]).max())
            results.append(res)
            print(json.dumps(res), file=sys.stderr)
    report = {"generator": f"ResnetGenerator(36->3, ngf {args.ngf}, n_down 4, {args.blocks} blocks, instance, "
                           f"reflect)", "input": f"{args.width}x{args.height}", "threads": args.threads,
              "malloc_trim": args.malloc_trim,
              "results": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from condsynth.io.atomic import atomic_write_text
        atomic_write_text(args.out, text + "\n")
    return report


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()

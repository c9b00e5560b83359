"""pix2pixHD learning check on the scenes world at 2:1 (not part of the test suite).

    python bench/bench_pix2pixhd.py --global-run RUN [--local-run RUN] --data DIR [--data-local DIR]
                                    [--out bench/out/pix2pixhd] [--n 100]

``--data``: the scenes world at the global stage's size written with ``--layout folders --class-ids
--instances`` (its ``test`` split is held out: the run trained on ``train`` and chose nothing on
``test``); ``--data-local``: the same scenes at twice the size, for the local stage. Every number is
measured in this run, on the test split:

- **segmentation score** (the paper's protocol with our segmenter, ``segmenter-scenes``): outputs and
  the real photos are resized x2 (bilinear) to the segmenter's training scale, label maps x2 (nearest);
  pixel accuracy, mean class accuracy and mIoU for the real photos (the scorer's ceiling), the trained
  G (features encoded from the real photo, and random clusters), and the untrained G (same seed);
- **per-building colour error**: for each building instance (Cityscapes ids class*1000 + k), the RMS over
  RGB in [0, 1] of (mean colour in the output - mean colour in the real photo), averaged over buildings:
  features encoded by E from the real photo against a random cluster per instance (no knowledge of the
  photo), the untrained G, the mean building colour of the training photos painted into every building
  (the best constant guess), and, with ``--no-encoder-run``, a model trained the same way without E
  (``model.use_encoder=false``: the error "without features");
- **cluster purity**: K-means (``cluster_features`` on the training split) assigns each held-out
  building's encoded feature to its nearest building centre; purity = sum over clusters of the count of
  its most common facade palette index (instances.json) / buildings (chance about 1/7 for 7 palettes);
- **another cluster changes the facade**: the mean over buildings of the mean pairwise distance (RMS RGB)
  between the building's mean colours when generated with each building cluster in turn;
- **local stage** (with ``--local-run``): L1 to the real photo at twice the size and the mean absolute
  Laplacian (high-frequency energy) of the outputs beside the real photos', for G1 + G2 against the global
  run's output resized x2 (bilinear).

Writes ``report.json`` and ``grid.png`` (labels | untrained | clusters | encoded | photo [| global x2 |
local | photo x2]).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from condsynth.data.synth import scenes  # noqa: E402
from condsynth.data.translation import PairedImageDataset  # noqa: E402
from condsynth.engine.checkpoint import load_for_inference  # noqa: E402
from condsynth.engine.logging import make_grid  # noqa: E402
from condsynth.io.images import save_image  # noqa: E402
from condsynth.metrics.segmentation import SegmentationScores  # noqa: E402
from condsynth.models.pix2pixhd import Pix2PixHD  # noqa: E402
from condsynth.pipelines import load_pipeline  # noqa: E402

BUILDING = scenes.CLASSES.index("building")


def test_batch(method: Pix2PixHD, root: Path, n: int) -> dict:
    cfg = dataclasses.replace(method.data_cfg, root=str(root), max_items=n)
    ds = PairedImageDataset(cfg, "test", train=False)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    batch["facade"] = facades(root / "test" / "instances.json", batch["name"])
    return batch


def facades(path: Path, names) -> list[dict[int, int]]:
    """Per image: building instance id -> facade palette index (the world's per-instance attribute)."""
    records = json.loads(path.read_text())
    return [{r["id"]: r["facade"] for r in records[Path(n).stem + ".png"] if r["class"] == "building"} for n in names]


@torch.no_grad()
def generate(method: Pix2PixHD, batch: dict, mode: str, seed: int = 0, chunk: int = 25) -> torch.Tensor:
    method.prepare_for_inference()
    out = []
    for i in range(0, len(batch["A"]), chunk):
        sl = slice(i, i + chunk)
        style = batch["B"][sl] if mode == "encoded" else None
        out.append(method.translate(batch["A"][sl], batch["inst"][sl], style=style, seed=seed + i))
    return torch.cat(out)


def building_colours(images: torch.Tensor, inst: torch.Tensor) -> list[dict[int, np.ndarray]]:
    """Per image: building instance id -> mean RGB in [0, 1]."""
    out = []
    for img, ids in zip((images + 1) / 2, inst):
        means = {}
        for k in ids.unique().tolist():
            if k >= 1000 and k // 1000 == BUILDING:
                m = ids == k
                means[k] = img[:, m].mean(1).numpy()
        out.append(means)
    return out


def colour_error(fake: torch.Tensor, real_cols: list[dict], inst: torch.Tensor) -> float:
    fake_cols = building_colours(fake, inst)
    errs = [np.sqrt(((f[k] - r[k]) ** 2).mean()) for f, r in zip(fake_cols, real_cols) for k in r]
    return round(float(np.mean(errs)), 4)


def seg_scores(segmenter, images: torch.Tensor, labels: torch.Tensor, upscale: int) -> dict:
    metric = SegmentationScores(len(scenes.CLASSES), class_names=scenes.CLASSES)
    for i in range(0, len(images), 25):
        x, y = images[i:i + 25], labels[i:i + 25]
        if upscale > 1:
            x = F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)
            y = F.interpolate(y[:, None].float(), scale_factor=upscale, mode="nearest")[:, 0].long()
        metric.update(segmenter.logits(x).cpu(), y)
    s = metric.compute()
    return {k: round(float(s[k]), 4) for k in ("pixel_accuracy", "mean_class_accuracy", "miou")}


def constant_colour_error(method: Pix2PixHD, real_cols: list[dict]) -> float:
    """The error of the best constant guess: every building gets the mean building colour of the training photos."""
    train = dataclasses.replace(method.data_cfg, max_items=200)
    ds = PairedImageDataset(train, "train", train=False)
    items = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    cols = [c for per_image in building_colours(items["B"], items["inst"]) for c in per_image.values()]
    mean = np.mean(cols, 0)
    errs = [np.sqrt(((mean - r[k]) ** 2).mean()) for r in real_cols for k in r]
    return round(float(np.mean(errs)), 4)


@torch.no_grad()
def purity(method: Pix2PixHD, batch: dict) -> dict:
    cl = method.clusters
    k = int(cl.counts[BUILDING])
    centres = cl.centres[BUILDING, :k]
    assigned, truth = [], []
    feats = method.E(batch["B"], method.pooling_ids(batch["A"], batch["inst"]))
    for b, fac in enumerate(batch["facade"]):
        for inst_id, facade in fac.items():
            m = batch["inst"][b] == inst_id
            if not m.any():
                continue
            f = feats[b][:, m][:, 0]              # pooled: constant over the instance
            assigned.append(int(((centres - f) ** 2).sum(1).argmin()))
            truth.append(facade)
    assigned, truth = np.array(assigned), np.array(truth)
    hits = sum(np.bincount(truth[assigned == c]).max() for c in np.unique(assigned))
    return {"building_clusters": k, "buildings": len(truth), "purity": round(float(hits / len(truth)), 4),
            "clusters_used": int(len(np.unique(assigned))), "facades": int(len(np.unique(truth)))}


@torch.no_grad()
def cluster_spread(method: Pix2PixHD, batch: dict, n_images: int = 20) -> dict:
    k = int(method.clusters.counts[BUILDING])
    sub = {key: batch[key][:n_images] for key in ("A", "inst")}
    cols = []
    for c in range(k):
        method.prepare_for_inference()
        fake = method.translate(sub["A"], sub["inst"], style={BUILDING: c}, seed=0)
        cols.append(building_colours(fake, sub["inst"]))
    dists = []
    for b in range(len(sub["A"])):
        for inst_id in cols[0][b]:
            v = np.stack([cols[c][b][inst_id] for c in range(k)])
            d = np.sqrt(((v[:, None] - v[None]) ** 2).mean(-1))
            dists.append(d[np.triu_indices(k, 1)].mean())
    return {"clusters": k, "buildings": len(dists), "mean_pairwise_rms": round(float(np.mean(dists)), 4)}


def laplacian_energy(images: torch.Tensor) -> float:
    kernel = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=images.dtype).expand(3, 1, 3, 3)
    return round(float(F.conv2d((images + 1) / 2, kernel, groups=3).abs().mean()), 4)


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--global-run", required=True)
    p.add_argument("--local-run")
    p.add_argument("--no-encoder-run", help="the same training without E (model.use_encoder=false)")
    p.add_argument("--data", required=True)
    p.add_argument("--data-local")
    p.add_argument("--segmenter", default="segmenter-scenes")
    p.add_argument("--out", default="bench/out/pix2pixhd")
    p.add_argument("--n", type=int, default=100, help="held-out images")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    trained, cfg, _ = load_for_inference(args.global_run, use_ema=False)
    torch.manual_seed(cfg.train.seed)
    untrained = Pix2PixHD(cfg.model, cfg.data)               # the trainer builds G, E from the same seed
    untrained.clusters.load_state_dict(trained.clusters.state_dict())
    counts = trained.cluster_features()                      # K-means over the training split
    batch = test_batch(trained, Path(args.data), args.n)
    segmenter = load_pipeline(args.segmenter, device="cpu")
    real_cols = building_colours(batch["B"], batch["inst"])

    fakes = {"trained, encoded from the photo": generate(trained, batch, "encoded"),
             "trained, random clusters": generate(trained, batch, "clusters"),
             "untrained, encoded from the photo": generate(untrained, batch, "encoded")}
    report = {"global_run": args.global_run, "held_out_images": len(batch["A"]),
              "size": list(batch["A"].shape[-2:]), "clusters_per_class": counts,
              "segmentation (x2 to the segmenter's scale)": {"real photos": seg_scores(segmenter, batch["B"],
                                                                                       batch["A"], 2)},
              "L1": {}, "building_colour_rms": {}}
    if args.no_encoder_run:
        plain, _, _ = load_for_inference(args.no_encoder_run, use_ema=False)
        fakes["trained without E"] = generate(plain, batch, "plain")
    for name, fake in fakes.items():
        report["segmentation (x2 to the segmenter's scale)"][name] = seg_scores(segmenter, fake, batch["A"], 2)
        report["L1"][name] = round(float((fake - batch["B"]).abs().mean()), 4)
        report["building_colour_rms"][name] = colour_error(fake, real_cols, batch["inst"])
    report["building_colour_rms"]["mean training building colour"] = constant_colour_error(
        trained, real_cols)
    report["cluster_purity"] = purity(trained, batch)
    report["cluster_spread"] = cluster_spread(trained, batch)
    grid = {"labels": trained._label_image(batch["A"]), "untrained": fakes["untrained, encoded from the photo"],
            "clusters": fakes["trained, random clusters"], "encoded": fakes["trained, encoded from the photo"],
            "photo": batch["B"]}

    if args.local_run:
        local, _, _ = load_for_inference(args.local_run, use_ema=False)
        local.clusters.load_state_dict(trained.clusters.state_dict())
        big = test_batch(local, Path(args.data_local), args.n)
        local_out = generate(local, big, "encoded")
        global_x2 = F.interpolate(fakes["trained, encoded from the photo"], scale_factor=2, mode="bilinear",
                                  align_corners=False).clamp(-1, 1)
        report["local_stage"] = {
            "local_run": args.local_run, "size": list(big["A"].shape[-2:]),
            "L1": {"global x2": round(float((global_x2 - big["B"]).abs().mean()), 4),
                   "local (G1 + G2)": round(float((local_out - big["B"]).abs().mean()), 4)},
            "laplacian_energy": {"real": laplacian_energy(big["B"]), "global x2": laplacian_energy(global_x2),
                                 "local (G1 + G2)": laplacian_energy(local_out)},
            "segmentation (native)": {"real": seg_scores(segmenter, big["B"], big["A"], 1),
                                      "global x2": seg_scores(segmenter, global_x2, big["A"], 1),
                                      "local (G1 + G2)": seg_scores(segmenter, local_out, big["A"], 1)}}
        up = {k: F.interpolate(v, scale_factor=2, mode="nearest") for k, v in grid.items()}
        grid = {**up, "global x2": global_x2, "local": local_out, "photo x2": big["B"]}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    save_image(out / "grid.png", make_grid(grid, max_rows=8))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

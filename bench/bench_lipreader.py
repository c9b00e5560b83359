"""Held-out word accuracy of the lip readers (lipreader runs) on a prepared LRW cache (the talking
world's test identities, never trained on), beside baselines measured in the same run:

* chance (1 / words) and the majority class of the training split;
* raw pixels: nearest class centroid of the flattened grey ROI window (the training split's means);
* each reader on a *static* clip (the middle frame repeated): what it reads from one still face;
* the two readers' agreement, the confusion matrices (rows: true word; columns: read word), and
  throughput (clips read per second, batch 32, one thread);
* with ``--pca``: AT-net's landmark PCA (6 components) fitted on the training split's aligned landmarks,
  its explained variance and its reconstruction error on the test split in crop pixels (mouth points
  48-67 and all 68), beside the mean shape.

    PYTHONPATH=src python bench/bench_lipreader.py --data data/talking96/prepared \
        --reader RUN_STAF --reader RUN_C3D [--split test] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from condsynth.data.talking import LipDataConfig, LipReadingDataset
from condsynth.models.lipreader import word_log_probs
from condsynth.pipelines import load_pipeline


def stack(ds) -> tuple[torch.Tensor, np.ndarray]:
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([it["frames"] for it in items]), np.array([int(it["label"]) for it in items])


def read_all(method, x: torch.Tensor, batch: int = 32) -> tuple[np.ndarray, float]:
    out, start = [], time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(word_log_probs(method.read(x[i:i + batch])).numpy())
    return np.concatenate(out), len(x) / (time.perf_counter() - start)


def confusion(pred: np.ndarray, true: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def show(cm: np.ndarray, words: list[str]) -> str:
    w = max(len(s) for s in words)
    head = " " * (w + 1) + " ".join(f"{s[:4]:>4}" for s in words)
    rows = [f"{s:>{w}} " + " ".join(f"{v:4d}" for v in row) for s, row in zip(words, cm)]
    return "\n".join([head] + rows)


def landmark_pca(root: str, split: str) -> dict:
    from condsynth.data.talking import load_prepared_clip, read_prepared
    from condsynth.nn.landmark_pca import LandmarkPCA, normalise_landmarks
    meta = read_prepared(root)
    size = int(meta["size"])

    def points(s):
        return torch.cat([torch.from_numpy(load_prepared_clip(root, e)["landmarks"]) for e in meta["clips"]
                          if e["split"] == s])

    train, test = normalise_landmarks(points("train"), size), normalise_landmarks(points(split), size)
    pca = LandmarkPCA.fit(train, k=6)
    rec = pca.reconstruct(pca.project(test))
    mean = pca.mean.reshape(68, 2) / pca.scale
    px = size / 2

    def err(a, pts=slice(None)):
        return float((a[..., pts, :] - test[..., pts, :]).norm(dim=-1).mean() * px)

    out = {"train_frames": len(train), "test_frames": len(test), "explained": pca.explained().tolist(),
           "explained_total": float(pca.explained().sum()), "mouth_px": err(rec, slice(48, 68)),
           "all_px": err(rec), "mean_shape_mouth_px": err(mean.expand_as(test), slice(48, 68)),
           "mean_shape_all_px": err(mean.expand_as(test))}
    print(f"landmark PCA (6 components, {len(train)} training frames): explained {out['explained_total']:.3f} "
          f"({', '.join(f'{v:.3f}' for v in out['explained'])}); test reconstruction error {out['all_px']:.2f} px "
          f"(mouth {out['mouth_px']:.2f}) vs the mean shape {out['mean_shape_all_px']:.2f} px "
          f"(mouth {out['mean_shape_mouth_px']:.2f}) in {size}-pixel crops")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a prepared LRW cache (condsynth data prepare lrw)")
    p.add_argument("--reader", action="append", required=True, help="a lipreader run, checkpoint or export")
    p.add_argument("--split", default="test")
    p.add_argument("--pca", action="store_true", help="also fit and score the landmark PCA")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    res: dict = {"data": args.data, "split": args.split, "readers": {}}
    if args.pca:
        res["pca"] = landmark_pca(args.data, args.split)
    cache: dict = {}
    for run in args.reader:
        pipe = load_pipeline(run, device="cpu")
        dc = pipe.config.data
        key = (dc.roi, tuple(dc.mouth_box), dc.frames, dc.size)
        if key not in cache:
            cfg = LipDataConfig(root=args.data, roi=dc.roi, mouth_box=dc.mouth_box, frames=dc.frames, size=dc.size)
            test, train = LipReadingDataset(cfg, args.split, False), LipReadingDataset(cfg, "train", False)
            cache[key] = (stack(test), stack(train), test.words)
        (x, y), (xt, yt), words = cache[key]
        n = len(words)
        if "chance" not in res:
            res.update(words=words, clips=len(y), chance=1 / n,
                       majority=float((y == np.bincount(yt, minlength=n).argmax()).mean()))
            cent = np.stack([xt[yt == k].reshape((yt == k).sum(), -1).mean(0).numpy() for k in range(n)])
            flat = x.reshape(len(x), -1).numpy()
            pix = ((flat[:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)
            res["pixel_centroid"] = float((pix == y).mean())
        lp, rate = read_all(pipe.method, x)
        pred = lp.argmax(1)
        static = x[:, :, x.shape[2] // 2: x.shape[2] // 2 + 1].expand_as(x).contiguous()
        lp_s, _ = read_all(pipe.method, static)
        cm = confusion(pred, y, n)
        name = f"{pipe.method.model_cfg.arch}:{Path(run).name}"
        res["readers"][name] = {"accuracy": float((pred == y).mean()), "static_accuracy": float(
            (lp_s.argmax(1) == y).mean()), "clips_per_s": rate, "confusion": cm.tolist(), "pred": pred.tolist()}
        print(f"{name}: accuracy {(pred == y).mean():.3f} on {len(y)} {args.split} clips (chance {1 / n:.3f}); "
              f"on static clips {(lp_s.argmax(1) == y).mean():.3f}; {rate:.0f} clips/s")
        print(show(cm, words))
    names = list(res["readers"])
    if len(names) == 2:
        a, b = (np.array(res["readers"][k]["pred"]) for k in names)
        res["agreement"] = float((a == b).mean())
        print(f"agreement of the two readers: {res['agreement']:.3f}")
    print(f"baselines: chance {res['chance']:.3f}, majority {res['majority']:.3f}, "
          f"pixel nearest centroid {res['pixel_centroid']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Held-out scores of the faces-world evaluators (face_probe runs) beside trivial baselines, on the
world's test identities (never trained on; each at all ten age groups):

* age: MAE in years of the estimator; baseline: the training set's median age for every face;
* landmarks: NME (outer-eye-corner normalised) of the regressor; baseline: the training mean shape;
* identity: TAR at FAR 1e-2 and 1e-3 over every pair of test images, and per age gap (pairs of one
  identity whose age groups differ by 1-3, 4-6, 7-9 groups, against all impostor pairs); baseline:
  raw pixels (the 64x64 grey image as the embedding).

    PYTHONPATH=src python bench/bench_face_probes.py --world data/faces64 --age RUN --landmarks RUN --identity RUN \
        [--age-estimator-out age.safetensors]      # the estimator file `condsynth eval age --estimator` takes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_faces_roundtrip import report  # noqa: E402

from condsynth.data.utkface import UTKFaceDataset
from condsynth.metrics.verification import tar_at_far
from condsynth.models.face_probe import nme
from condsynth.pipelines import load_pipeline


def batches(ds, n=100):
    for i in range(0, len(ds), n):
        items = [ds[j] for j in range(i, min(i + n, len(ds)))]
        yield torch.utils.data.default_collate(items)


def predict(pipe, ds) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([pipe.method.predict(b["image"].to(pipe.device)).float().cpu().numpy()
                               for b in batches(ds)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path)
    p.add_argument("--age")
    p.add_argument("--landmarks")
    p.add_argument("--identity")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--out")
    p.add_argument("--age-estimator-out", help="also save the age run's network as an `eval age --estimator` file")
    args = p.parse_args(argv)
    res: dict = {}
    test = UTKFaceDataset(args.world / "test", size=args.size, landmarks=True, identities=True)
    train = UTKFaceDataset(args.world / "train", size=args.size, landmarks=True)
    ages = np.array([r.age for r in test.records], np.float64)
    groups = np.array([r.group for r in test.records])
    if args.age:
        pipe = load_pipeline(args.age, device="cpu")
        pred = predict(pipe, test)
        if args.age_estimator_out:
            from condsynth.metrics.age import save_age_regressor
            save_age_regressor(pipe.method.net, args.age_estimator_out,
                               meta={"trained_on": "faces world renders", "run": str(args.age)})
        med = np.median([r.age for r in train.records])
        res["age"] = {"mae": float(np.abs(pred - ages).mean()), "baseline_median_age_mae": float(np.abs(med - ages).mean()),
                      "mae_per_group": [float(np.abs(pred - ages)[groups == g].mean()) for g in range(10)],
                      "n": len(ages)}
    if args.landmarks:
        pred = torch.from_numpy(predict(load_pipeline(args.landmarks, device="cpu"), test))
        truth = torch.stack([test[i]["landmarks"] for i in range(len(test))])
        mean_shape = torch.stack([train[i]["landmarks"] for i in range(len(train))]).mean(0, keepdim=True)
        res["landmarks"] = {"nme": float(nme(pred, truth).mean()),
                            "baseline_mean_shape_nme": float(nme(mean_shape.expand_as(truth), truth).mean()),
                            "n": len(truth)}
    if args.identity:
        ids = np.array(test.identity)
        emb = predict(load_pipeline(args.identity, device="cpu"), test)
        pixels = np.concatenate([b["image"].mean(1).flatten(1).numpy() for b in batches(test)])
        pixels = pixels - pixels.mean(0)
        out = {}
        for name, e in (("embedding", emb), ("baseline_pixels", pixels)):
            out[name] = {f"far_{far:g}": tar_at_far(e, ids, far) for far in (1e-2, 1e-3)}
            # TAR at the overall FAR-1e-2 threshold, for genuine pairs by age-group gap
            en = e / np.linalg.norm(e, axis=1, keepdims=True)
            thr = out[name]["far_0.01"]["threshold"]
            iu = np.triu_indices(len(e), 1)
            sim = (en[iu[0]] * en[iu[1]]).sum(1)
            same = ids[iu[0]] == ids[iu[1]]
            gap = np.abs(groups[iu[0]] - groups[iu[1]])
            out[name]["tar_by_group_gap_at_far_0.01"] = {
                f"{lo}-{hi}": float((sim[same & (gap >= lo) & (gap <= hi)] > thr).mean()) for lo, hi in
                ((1, 3), (4, 6), (7, 9))}
        res["identity"] = out
    report(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

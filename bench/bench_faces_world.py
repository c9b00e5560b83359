"""The faces world against dlib: detection rate of dlib's HOG detector (no Haar fallback) on world
renders, and the error of dlib's 68 points against the world's exact landmarks where it finds a
face (mean point distance over the outer-eye-corner distance, 300-W's NME); also per age group.
Writes a contact sheet of identities across the ten age groups.

    PYTHONPATH=src python bench/bench_faces_world.py --n 200 --size 128 [--sheet sheet.png] [--out r.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_faces_roundtrip import report  # noqa: E402

from condsynth.data.synth import faces as W
from condsynth.data.utkface import AGE_GROUP_NAMES, age_group
from condsynth.io.faces import FaceAnalyzer


def measure(n: int, size: int, seed: int = 9, pose: float = 1.0) -> dict:
    fa = FaceAnalyzer(haar_fallback=False)
    found = np.zeros(10, int)
    total = np.zeros(10, int)
    errs: list[list[float]] = [[] for _ in range(10)]
    t_render = 0.0
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        ident = W.sample_identity(rng, i)
        age = int(rng.integers(0, 95))
        t = time.perf_counter()
        img, pts = W.render_face(ident, age, size, nuisance=W.sample_nuisance(rng, pose), rng=rng)
        t_render += time.perf_counter() - t
        g = age_group(age)
        total[g] += 1
        faces = fa.detect_all(img)
        if not faces:
            continue
        found[g] += 1
        lm = fa.landmarks(img, faces[0])
        errs[g].append(float(np.linalg.norm(lm - pts, axis=1).mean() / np.linalg.norm(pts[36] - pts[45])))
    allerr = [e for es in errs for e in es]
    return {"n": n, "size": size, "pose": pose, "detection_rate": float(found.sum() / n),
            "nme_mean": float(np.mean(allerr)) if allerr else None,
            "nme_median": float(np.median(allerr)) if allerr else None,
            "render_seconds_per_image": t_render / n,
            "per_group": {AGE_GROUP_NAMES[g]: {"n": int(total[g]), "detected": int(found[g]),
                                               "nme_mean": float(np.mean(errs[g])) if errs[g] else None}
                          for g in range(10)}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--pose", type=float, default=1.0)
    p.add_argument("--sheet")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.sheet:
        Image.fromarray(W.contact_sheet(8, 96)).save(args.sheet)
    report(measure(args.n, args.size, pose=args.pose), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

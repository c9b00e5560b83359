"""LDcGAN on real photos no training set contains (scikit-image's astronaut, matplotlib's grace_hopper):
all ten groups through FaceAgingPipeline (detect -> align -> generate -> paste back), and per group:

* dlib's 128-D descriptor distance between the input face and the aged face (same person below 0.6);
* the mean absolute change (0-255) inside the paste mask against the input, and between the youngest
  (0-5) and the oldest (80+) result;
* the largest change outside the paste mask (0 = the background is bit-exact).

    PYTHONPATH=src python bench/bench_ldcgan_photos.py --checkpoint ldcgan-faces64 --out photos.json --strips DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_faces_roundtrip import photos, report  # noqa: E402

from condsynth.io.faces import FaceAnalyzer
from condsynth.io.images import save_image
from condsynth.metrics.verification import descriptor_distance
from condsynth.pipelines.face_aging import FaceAgingPipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="ldcgan-faces64")
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--out")
    p.add_argument("--strips", type=Path)
    args = p.parse_args(argv)
    fa = FaceAnalyzer()
    pipe = FaceAgingPipeline.from_pretrained(args.checkpoint, device="cpu")
    res = {"checkpoint": args.checkpoint}
    for name, img in photos().items():
        out = pipe(img, to="all", analyzer=fa, crop_size=args.crop_size, source=name)
        mask = out.paste_masks[0]
        inside, outside = mask > 0, mask == 0
        d_in = fa.descriptor(img)
        per = {}
        for g, aged in out.images.items():
            diff = np.abs(aged.astype(np.int16) - img.astype(np.int16))
            d = fa.descriptor(aged)
            per[g] = {"descriptor_distance": float(descriptor_distance(d_in[None], d[None])[0]) if d is not None
                      else None,
                      "mean_change_inside": float(diff[inside].mean()),
                      "max_change_outside": int(diff[outside].max()) if outside.any() else 0,
                      "mean_f_A": float(out.masks[g][0].mean() / 255)}
        young, old = out.images["0-5"].astype(np.int16), out.images["80+"].astype(np.int16)
        res[name] = {"size": list(img.shape[:2]), "groups": per,
                     "mean_change_inside_0-5_vs_80+": float(np.abs(young - old)[inside].mean()),
                     "pixels_outside_mask": int(outside.sum())}
        if args.strips:
            args.strips.mkdir(parents=True, exist_ok=True)
            save_image(args.strips / f"{name}_strip.png", out.strip(height=256))
            out.save_debug(args.strips / f"{name}_debug")
    report(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

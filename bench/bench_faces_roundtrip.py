"""Align -> paste back an unchanged face on real photos (scikit-image's astronaut, matplotlib's
grace_hopper: test-only photos): the photo outside the paste mask must be bit-exact, the feather band
and the face within a few grey levels, and dlib's 128-D descriptor of the pasted face must match the
original's.

    PYTHONPATH=src python bench/bench_faces_roundtrip.py [--size 128] [--out OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from condsynth.io.faces import FaceAnalyzer, align_faces, paste_back, paste_mask


def photos() -> dict[str, np.ndarray]:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        grace = np.asarray(Image.open(fh).convert("RGB"))
    return {"astronaut": skdata.astronaut(), "grace_hopper": grace}


def round_trip(img: np.ndarray, analyzer: FaceAnalyzer, size: int = 128) -> dict:
    import cv2
    a = align_faces(img, analyzer, size=size)[0]
    out = paste_back(img, a.image, a)
    h, w = img.shape[:2]
    inv = cv2.invertAffineTransform(a.matrix)
    mask = cv2.warpAffine(paste_mask(a), inv, (w, h), flags=cv2.INTER_LINEAR)
    diff = np.abs(out.astype(int) - img.astype(int)).max(-1)
    outside, inside = mask == 0, mask >= 1 - 1 / 512
    feather = ~outside & ~inside
    d0, d1 = analyzer.descriptor(img), analyzer.descriptor(out)
    return {"face_box": list(a.face.box), "face_size": a.face.size, "crop": size,
            "max_diff_outside_mask": int(diff[outside].max()), "pixels_outside": int(outside.sum()),
            "max_diff_feather": int(diff[feather].max()), "mean_diff_feather": float(diff[feather].mean()),
            "max_diff_inside": int(diff[inside].max()), "mean_diff_inside": float(diff[inside].mean()),
            "descriptor_distance": float(np.linalg.norm(d0 - d1))}


def report(res: dict, out: str | None) -> None:
    """Print the results as JSON and write them to ``out`` (the faces benches share this)."""
    text = json.dumps(res, indent=2)
    print(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--out")
    args = p.parse_args(argv)
    fa = FaceAnalyzer()
    report({name: round_trip(img, fa, args.size) for name, img in photos().items()}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

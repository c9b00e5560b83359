"""File-level face metric runs for ``condsynth eval lmd`` and ``condsynth eval verify``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.faces import FaceAnalyzer
from condsynth.io.images import read_image
from condsynth.io.video import is_video, read_frames
from condsynth.metrics.base import to_python
from condsynth.metrics.inputs import paired_files
from condsynth.metrics.lmd import LMD
from condsynth.metrics.record import MetricRecord
from condsynth.metrics.verification import DEFAULT_THRESHOLD, FaceVerification, descriptor_distance


def _frames(source: Path) -> list[tuple[str, np.ndarray]]:
    if is_video(source):
        return [(f"frame {i}", f) for i, f in enumerate(read_frames(source))]
    return [("", read_image(source))]


def _frame_sequences(a: Path, b: Path) -> list[tuple[Path, str, np.ndarray, Path, np.ndarray]]:
    """(file_a, frame label, frame_a, file_b, frame_b) for two videos, two images or two paired folders."""
    if a.is_dir() or b.is_dir():
        if not (a.is_dir() and b.is_dir()):
            raise UserError(f"{b if a.is_dir() else a}: compare a folder with a folder, not with a file")
        pairs = [(pa, pb) for pa, pb in paired_files(a, b)]
    else:
        pairs = [(a, b)]
    out = []
    for pa, pb in pairs:
        fa, fb = _frames(pa), _frames(pb)
        if len(fa) != len(fb):
            raise UserError(f"{pb}: has {len(fb)} frames but {pa} has {len(fa)}; LMD compares frame by frame")
        for (label, xa), (_, xb) in zip(fa, fb):
            out.append((pa, label, xa, pb, xb))
    return out


def _landmarks_or_error(fa: FaceAnalyzer, img: np.ndarray, path: Path, label: str):
    face = fa.detect(img)
    if face is None:
        where = f" ({label})" if label else ""
        raise UserError(f"{path}: no face found{where} by dlib or the OpenCV Haar cascade")
    return fa.landmarks(img, face), face.detector


def run_lmd(reference, generated, *, region: str = "mouth", size: int | None = None,
            split: str | None = None, missing: str = "error") -> MetricRecord:
    """LMD between the frames of two videos (or two images, or same-named images of two folders).

    ``missing='skip'`` leaves out frames where the *generated* frame has no detectable face (and
    counts them in the record); a reference frame without a face is always an error.
    """
    a, b = Path(reference), Path(generated)
    for p in (a, b):
        if not p.exists():
            raise UserError(f"{p}: not found")
    seq = _frame_sequences(a, b)
    fa = FaceAnalyzer()
    metric = LMD(region=region)
    detectors: dict[str, int] = {}
    res = set()
    skipped_frames: list[str] = []
    for pa, label, xa, pb, xb in seq:
        if xa.shape != xb.shape:
            raise UserError(f"{pb}: frame is {xb.shape[1]}x{xb.shape[0]} but {pa} is {xa.shape[1]}x{xa.shape[0]}")
        la, da = _landmarks_or_error(fa, xa, pa, label)
        try:
            lb, db = _landmarks_or_error(fa, xb, pb, label)
        except UserError:
            if missing != "skip":
                raise
            skipped_frames.append(f"{pb.name} {label}".strip())
            continue
        for d in (da, db):
            detectors[d] = detectors.get(d, 0) + 1
        h, w = xa.shape[:2]
        res.add((w, h))
        scale = (size / w, size / h) if size else (1.0, 1.0)
        metric.update(la[None], lb[None], scale=scale)
    out = to_python(metric.compute())
    if out["frames"] == 0:
        raise UserError(f"{b}: no generated frame has a detectable face; LMD is undefined")
    unit = f"pixels of a {size}x{size} frame" if size else "pixels of the native frame"
    return MetricRecord(
        metric=f"lmd-{region}", values={"mean": out["mean"], "std": out["std"]}, num_samples=out["frames"],
        backend="dlib 68-point shape predictor", weights_file=fa.files["landmarks68"]["file"],
        weights_sha256=fa.files["landmarks68"]["sha256"],
        resolution=sorted(res) if len(res) > 1 else list(next(iter(res))),
        resize=f"landmarks rescaled to {size}x{size}" if size else None, split=split,
        inputs={"reference": str(a), "generated": str(b)},
        notes=["points 48-67 (mouth)" if region == "mouth" else "all 68 points",
               "each landmark set centred on its own centroid; mean over points, then over frames "
               "(spec-avwnet-painting §2.11; ATVGnet's script sums over points instead)"],
        extra={"unit": unit, "detectors": detectors, "std_over": "frames",
               "skipped_frames_without_face": skipped_frames})


def run_verification(a, b, *, threshold: float = DEFAULT_THRESHOLD, split: str | None = None) -> MetricRecord:
    """Verification between two face images, or same-named images of two folders."""
    a, b = Path(a), Path(b)
    for p in (a, b):
        if not p.exists():
            raise UserError(f"{p}: not found")
    if a.is_dir() or b.is_dir():
        if not (a.is_dir() and b.is_dir()):
            raise UserError(f"{b if a.is_dir() else a}: compare a folder with a folder, not with a file")
        pairs = paired_files(a, b)
    else:
        pairs = [(a, b)]
    fa = FaceAnalyzer()
    metric = FaceVerification(threshold)
    per_pair, detectors = {}, {}
    for pa, pb in pairs:
        descs = []
        for p in (pa, pb):
            img = read_image(p)
            face = fa.detect(img)
            if face is None:
                raise UserError(f"{p}: no face found by dlib or the OpenCV Haar cascade")
            detectors[face.detector] = detectors.get(face.detector, 0) + 1
            descs.append(fa.descriptor(img, face))
        metric.update(descs[0][None], descs[1][None])
        per_pair[f"{pa.name}|{pb.name}"] = float(descriptor_distance(descs[0], descs[1])[0])
    out = to_python(metric.compute())
    return MetricRecord(
        metric="verify", values={k: out[k] for k in ("mean_distance", "mean_cosine", "verification_rate")},
        num_samples=out["pairs"], backend="dlib face_recognition_model_v1 (128-D ResNet)",
        weights_file=fa.files["face_recognition"]["file"], weights_sha256=fa.files["face_recognition"]["sha256"],
        split=split, inputs={"a": str(a), "b": str(b)},
        notes=[f"same person if Euclidean distance < {threshold} (dlib convention); not comparable with "
               "Face++ confidences (thesis Table 4.3)"],
        extra={"threshold": threshold, "distances": per_pair, "detectors": detectors,
               "landmarks_file": fa.files["landmarks68"]})

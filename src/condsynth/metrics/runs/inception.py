"""File-level Inception runs: ``condsynth eval fid / kid / fid-stats / is``.

Every record carries the protocol: backend, weights file and sha256, sample counts, input
resolution, resize method, splits, seed.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from condsynth.errors import UserError
from condsynth.metrics.features import RESIZE_MODES, FeatureBackend, describe_resize, get_backend
from condsynth.metrics.fid import (centred_factor, feature_statistics, frechet_distance_general,
                                   kernel_inception_distance, load_statistics, save_statistics)
from condsynth.metrics.inception_score import inception_score_from_logits
from condsynth.metrics.inputs import ImageFolder
from condsynth.metrics.record import MetricRecord


def _progress(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", leave=False, disable=total < 64)


def extract_features(folder: ImageFolder, backend: FeatureBackend, *, resize: str, batch_size: int,
                     with_logits: bool = False):
    feats, logits = [], []
    with _progress(len(folder), f"inception {folder.folder.name}") as bar:
        for batch in folder.batches(batch_size):
            out = backend(batch, resize=resize, with_logits=with_logits)
            if with_logits:
                feats.append(out[0])
                logits.append(out[1])
            else:
                feats.append(out)
            bar.update(len(batch))
    f = torch.cat(feats).numpy()
    return (f, torch.cat(logits).numpy()) if with_logits else f


def _protocol(backend: FeatureBackend, resize: str) -> dict:
    return {"backend": backend.name, "weights_file": backend.weights_file, "weights_sha256": backend.weights_sha256,
            "resize": describe_resize(resize)}


def _open_side(source: str | Path, need_features: bool):
    """Check one side of FID / KID before any network is loaded: a saved .npz or a checked folder."""
    source = Path(source)
    if source.suffix == ".npz":
        if need_features:
            raise UserError(f"{source}: KID needs images, not saved statistics")
        return load_statistics(source, with_factor=True)
    return ImageFolder(source, min_count=2)


def _side(opened, source, backend: FeatureBackend, resize: str, batch_size: int):
    """Features (or saved statistics) for one side of FID / KID."""
    if not isinstance(opened, ImageFolder):
        mu, sigma, n, proto, factor = opened
        if proto.get("weights_sha256") and backend.weights_sha256 and proto["weights_sha256"] != backend.weights_sha256:
            raise UserError(f"{source}: statistics were computed with other Inception weights "
                            f"({proto.get('backend')}, sha256 {proto['weights_sha256'][:12]}...) than "
                            f"this run ({backend.name}, {backend.weights_sha256[:12]}...)")
        if proto.get("resize") and proto["resize"] != describe_resize(resize):
            raise UserError(f"{source}: statistics were computed with resize '{proto['resize']}', "
                            f"this run uses '{describe_resize(resize)}'")
        return {"mu": mu, "sigma": sigma, "n": n, "resolution": proto.get("resolution"), "features": None,
                "factor": factor}
    f = extract_features(opened, backend, resize=resize, batch_size=batch_size)
    mu, sigma = feature_statistics(f)
    # With fewer samples than dimensions the centred features are a cheap, exact covariance factor.
    factor = centred_factor(f) if f.shape[0] < f.shape[1] else None
    return {"mu": mu, "sigma": sigma, "n": len(opened), "resolution": list(opened.size), "features": f,
            "factor": factor, "skipped": opened.skipped}


def run_fid(dir_a, dir_b, *, backend: str = "auto", weights: str | None = None, resize: str = "bilinear",
            batch_size: int = 16, with_kid: bool = False, kid_subsets: int = 100, kid_subset_size: int = 1000,
            seed: int = 0, save_stats_a: str | None = None, split: str | None = None,
            sqrt_method: str = "auto", weights_sha256: str | None = None, device: str = "cpu") -> MetricRecord:
    """FID (and optionally KID) between two folders; either side may be a saved ``.npz``."""
    t0 = time.perf_counter()
    if resize not in ("none", *RESIZE_MODES):
        raise UserError(f"unknown resize mode '{resize}'; choose one of none, {', '.join(RESIZE_MODES)}")
    opened_a, opened_b = _open_side(dir_a, with_kid), _open_side(dir_b, with_kid)  # bad inputs fail fast
    net = get_backend(backend, weights, weights_sha256=weights_sha256, device=device)
    a = _side(opened_a, dir_a, net, resize, batch_size)
    b = _side(opened_b, dir_b, net, resize, batch_size)
    fa, fb = a["factor"], b["factor"]
    if sqrt_method == "lowrank":  # forced: build factors from whatever features there are
        fa = fa if fa is not None or a["features"] is None else centred_factor(a["features"])
        fb = fb if fb is not None or b["features"] is None else centred_factor(b["features"])
    fid, how = frechet_distance_general(a["mu"], a["sigma"], b["mu"], b["sigma"], fa, fb, method=sqrt_method)
    values = {"fid": fid}
    if with_kid:
        values["kid_mean"], values["kid_std"] = kernel_inception_distance(
            a["features"], b["features"], num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    if save_stats_a:
        save_statistics(save_stats_a, a["mu"], a["sigma"], a["n"],
                        {**_protocol(net, resize), "resolution": a["resolution"], "source": str(dir_a)},
                        factor=a["factor"])
    notes = list(net.notes)
    for side, src in ((a, dir_a), (b, dir_b)):
        if side.get("skipped"):
            notes.append(f"{src}: ignored {len(side['skipped'])} non-image file(s), e.g. {side['skipped'][0]}")
    if min(a["n"], b["n"]) < 2048:
        notes.append(f"fewer samples ({min(a['n'], b['n'])}) than feature dimensions (2048): the covariance is "
                     "rank-deficient and FID is biased upwards; papers use 10k-50k images")
    rec = MetricRecord(
        metric="fid+kid" if with_kid else "fid", values=values,
        num_samples={"a": a["n"], "b": b["n"]}, backend=net.name, weights_file=net.weights_file,
        weights_sha256=net.weights_sha256, resolution={"a": a["resolution"], "b": b["resolution"]},
        resize=describe_resize(resize), split=split, seed=seed if with_kid else None,
        inputs={"a": str(dir_a), "b": str(dir_b)}, notes=notes,
        extra={"seconds": round(time.perf_counter() - t0, 3), "device": str(device),
               "covariance": "unbiased (ddof=1)",
               "matrix_sqrt": how,
               **({"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size,
                   "kid_kernel": "(x.y/d + 1)^3"} if with_kid else {})})
    return rec


def run_fid_stats(folder, out, *, backend: str = "auto", weights: str | None = None, resize: str = "bilinear",
                  batch_size: int = 16, weights_sha256: str | None = None, device: str = "cpu") -> MetricRecord:
    """Compute and save reference statistics (``.npz``) of a folder."""
    opened = ImageFolder(folder, min_count=2)
    net = get_backend(backend, weights, weights_sha256=weights_sha256, device=device)
    side = _side(opened, folder, net, resize, batch_size)
    save_statistics(out, side["mu"], side["sigma"], side["n"],
                    {**_protocol(net, resize), "resolution": side["resolution"], "source": str(folder)},
                    factor=side["factor"])
    return MetricRecord(metric="fid-stats", values={"stats_file": str(out)}, num_samples=side["n"],
                        backend=net.name, weights_file=net.weights_file, weights_sha256=net.weights_sha256,
                        resolution=side["resolution"], resize=describe_resize(resize),
                        inputs={"folder": str(folder)}, notes=list(net.notes))


def run_inception_score(folder, *, backend: str = "auto", weights: str | None = None, resize: str = "bilinear",
                        splits: int = 10, batch_size: int = 16, drop_first_logit: bool = False,
                        split: str | None = None, weights_sha256: str | None = None,
                        device: str = "cpu") -> MetricRecord:
    """Inception Score of a folder: mean and std over ``splits`` parts."""
    folder = ImageFolder(folder, min_count=max(2, splits))
    net = get_backend(backend, weights, need_logits=True, weights_sha256=weights_sha256, device=device)
    _, logits = extract_features(folder, net, resize=resize, batch_size=batch_size, with_logits=True)
    mean, std = inception_score_from_logits(logits, splits, drop_first_logit)
    notes = list(net.notes) + ["IS depends on the exact Inception weights; only the TF 2015-12-05 graph "
                               "(1008 logits) is comparable with published ImageNet-Inception numbers"]
    return MetricRecord(metric="is", values={"is_mean": mean, "is_std": std}, num_samples=len(folder),
                        backend=net.name, weights_file=net.weights_file, weights_sha256=net.weights_sha256,
                        resolution=list(folder.size), resize=describe_resize(resize),
                        split=split or f"{splits} consecutive splits of N//{splits}",
                        inputs={"folder": str(folder.folder)}, notes=notes,
                        extra={"num_logits": int(logits.shape[1]), "drop_first_logit": drop_first_logit})

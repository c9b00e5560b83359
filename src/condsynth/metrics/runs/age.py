"""File-level runs: ``condsynth eval age`` (Table 4.2 protocol) and ``condsynth eval age-train``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from condsynth.data.utkface import AGE_GROUP_NAMES, UTKFaceDataset, parse_utkface_name, read_utkface, split_utkface
from condsynth.errors import UserError
from condsynth.io.images import list_images, read_image, uint8_to_tensor
from condsynth.io.weights import sha256_of
from condsynth.metrics.age import (AgeAccuracy, AgeRegressor, age_rows, format_age_table, load_age_regressor,
                                   save_age_regressor, train_age_regressor)
from condsynth.metrics.record import MetricRecord


def _grouped_files(root: Path, allow_utkface: bool) -> dict[int, list[Path]]:
    """Files per age group: sub-folders named '21-30', ..., '80+', or (real side) UTKFace file names."""
    if not root.is_dir():
        raise UserError(f"{root}: folder not found")
    groups = {}
    for gi, name in enumerate(AGE_GROUP_NAMES):
        sub = root / name
        if sub.is_dir():
            groups[gi] = list_images(sub)
    if groups:
        return groups
    if allow_utkface:
        records, _ = read_utkface(root, skip_invalid=True)
        for r in records:
            groups.setdefault(r.group, []).append(r.path)
        return groups
    raise UserError(f"{root}: expected sub-folders named after the target age groups "
                    f"({', '.join(AGE_GROUP_NAMES[3:])})")


def _estimate(model: AgeRegressor, files: list[Path], size: int, batch_size: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(files), batch_size):
        x = torch.stack([uint8_to_tensor(read_image(f)) for f in files[i:i + batch_size]])
        if x.shape[-2:] != (size, size):
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                                antialias=True)
        with torch.no_grad():
            out.append(model(x).double().numpy())
    return np.concatenate(out)


def run_age_accuracy(real_dir, fake_dir, estimator: str, *, method: str = "generated",
                     split: str | None = None) -> MetricRecord:
    real_dir, fake_dir = Path(real_dir), Path(fake_dir)
    model, meta = load_age_regressor(estimator)
    size = int(meta.get("size", 128))
    real, fake = _grouped_files(real_dir, True), _grouped_files(fake_dir, False)
    common = sorted(set(real) & set(fake))
    if not common:
        raise UserError(f"{fake_dir}: no age group in common with {real_dir}")
    metric = AgeAccuracy()
    for g in common:
        metric.update(_estimate(model, real[g], size), [g], real=True)
        metric.update(_estimate(model, fake[g], size), [g], real=False)
    out = metric.compute()
    rows = age_rows(out)
    table = format_age_table(rows, method)
    return MetricRecord(
        metric="age-accuracy", values={"rows": rows, "mean_abs_diff": float(out["mean_abs_diff"])},
        num_samples={"real": sum(r["n_real"] for r in rows), "fake": sum(r["n_fake"] for r in rows)},
        backend="condsynth AgeRegressor", weights_file=str(estimator), weights_sha256=sha256_of(estimator),
        resolution=[size, size], resize=f"bilinear (antialiased) to {size}x{size}", split=split,
        inputs={"real": str(real_dir), "generated": str(fake_dir)},
        notes=["ages estimated by the toolkit's own regressor, not Face++: not comparable with thesis Table 4.2",
               "p-values: Welch two-sample t-test per group (the thesis does not name its test)"],
        extra={"table": table, "estimator_meta": meta})


def run_age_train(root, out, *, epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, size: int = 128,
                  seed: int = 0, test_fraction: float = 0.1) -> MetricRecord:
    """Train the age estimator on the train split of a UTKFace-layout folder; report MAE on its test split."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    records, skipped = read_utkface(root, skip_invalid=True)
    train, test = split_utkface(records, test_fraction=test_fraction, seed=seed)
    if not train or not test:
        raise UserError(f"{root}: too few files ({len(records)}) for a train/test split")
    ds = UTKFaceDataset(root, size=size)
    names = {r.path.name: i for i, r in enumerate(ds.records)}
    train_idx = [names[r.path.name] for r in train]
    test_idx = [names[r.path.name] for r in test]

    def collate(items):
        return {"image": torch.stack([it["image"] for it in items]), "age": torch.stack([it["age"] for it in items])}

    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, train_idx), batch_size=batch_size,
                                         shuffle=True, collate_fn=collate,
                                         # a last batch of one image breaks BatchNorm's batch statistics
                                         drop_last=len(train_idx) > batch_size,
                                         generator=torch.Generator().manual_seed(seed))
    model = AgeRegressor()
    losses = train_age_regressor(model, loader, epochs=epochs, lr=lr)
    model.eval()
    test_files = [ds.records[i].path for i in test_idx]
    pred = _estimate(model, test_files, size)
    mae = float(np.mean(np.abs(pred - np.array([parse_utkface_name(f).age for f in test_files]))))
    meta = {"size": size, "data": str(root), "train": len(train), "test": len(test), "epochs": epochs,
            "test_mae_years": mae, "seed": seed}
    save_age_regressor(model, out, meta)
    return MetricRecord(metric="age-train", values={"test_mae_years": mae, "final_train_l1": losses[-1]},
                        num_samples={"train": len(train), "test": len(test)}, backend="condsynth AgeRegressor",
                        weights_file=str(out), weights_sha256=sha256_of(out), resolution=[size, size],
                        split=f"stratified {1 - test_fraction:.0%}/{test_fraction:.0%}, seed {seed}", seed=seed,
                        inputs={"root": str(root)}, extra={"skipped_files": [str(p) for p in skipped],
                                                           "seconds": round(time.perf_counter() - t0, 2)})

"""LDcGAN on the faces world's held-out identities (each rendered at all ten age groups), against baselines
measured in the same run (plans/thesis-methods.md §3.2, checks 1-4 and 6):

* **age table** (thesis Table 4.2's form): inputs aged <= 20, targets 21-30 ... 80+; the world-trained age
  probe estimates the age of every output; "Real" = its mean estimate on the real renders of that group;
  |difference| and Welch's p per group (metrics.age.AgeAccuracy). Baseline: output = input.
  Spearman rho(target group, estimate) over all outputs.
* **identity**: the world identity probe's cosine between input and output; verification rate at the
  threshold that gives FAR 1e-3 (and 1e-2) over impostor pairs of real test renders; beside it the rate of
  the true pairs (input, the same identity's real render at the target group) at the same thresholds.
* **paired** (only a world can do this): L1 and SSIM of the output against the true render of that
  identity at the target group, and the landmark error (the landmark probe on the output, NME against the
  true landmarks), for small (1-3 groups) and large (4-9 groups) age gaps; baselines: the input itself,
  and the target group's mean face (mean of the training renders of that group; its landmarks: the
  group's mean shape). G_L's L* against the true landmarks beside the prototype shift and L* = L.
  Two targets: the world's stored render of that group (``paired_*``: another photo, with its own
  pose, light and background), and the **same photo at the target age** (``matched_*``: the input's
  render re-drawn by the world with the target group's age, same pose, light, background and noise;
  faces.render_world_face), which is the counterfactual the method is asked for.
* **masks**: mean f_A, and the mean |output - input| where f_A > 0.99.
* throughput of G (images/s, one thread) and PNG grids (input, ten groups, the true renders below).

    PYTHONPATH=src python bench/bench_ldcgan.py --world data/faces64 --run full=runs/ldcgan-world64 \
        --run no_landmarks=runs/ldcgan-world64-nolm --age runs/faces64-age --identity runs/faces64-identity \
        --landmarks runs/faces64-landmarks --out ldcgan.json --grids out/grids
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_faces_roundtrip import report  # noqa: E402

from condsynth.data.synth.faces import Identity, identity_of, render_of, render_world_face
from condsynth.data.utkface import UTKFaceDataset
from condsynth.io.images import save_image
from condsynth.metrics.age import AgeAccuracy, age_rows, format_age_table
from condsynth.metrics.image_quality import ssim
from condsynth.metrics.verification import tar_at_far
from condsynth.models.face_probe import nme
from condsynth.pipelines import load_pipeline

GAPS = {"small_1-3": (1, 3), "large_4-9": (4, 9)}


def stack(ds, key="image"):
    return torch.stack([ds[i][key] for i in range(len(ds))])


def probe(pipe, x: torch.Tensor, n: int = 200) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([pipe.method.predict(x[i:i + n]).float() for i in range(0, len(x), n)])


class Paired:
    """Running sums of a per-pair score by (gap bucket)."""

    def __init__(self):
        self.v: dict[str, list[float]] = {k: [] for k in GAPS}

    def add(self, values: np.ndarray, gaps: np.ndarray) -> None:
        for k, (lo, hi) in GAPS.items():
            sel = (gaps >= lo) & (gaps <= hi)
            self.v[k] += values[sel].tolist()

    def summary(self) -> dict:
        return {k: float(np.mean(v)) if v else float("nan") for k, v in self.v.items()}


def matched_targets(world: Path, records, size: int):
    """The same photo at every group: for each test image, the world re-draws its render (same pose,
    light, background, noise) with the identity's age of each group. Returns images (10 x N x 3 x H x W,
    in [-1, 1]) and their exact landmarks (10 x N x 68 x 2), at the dataset's ``size``."""
    meta = json.loads((world / "meta.json").read_text())
    identities = json.loads((world / "identities.json").read_text())
    if int(meta["size"]) != size:
        raise SystemExit(f"{world}: world rendered at {meta['size']}, bench --size {size}: the matched targets "
                         f"need the world's size")
    imgs = np.zeros((10, len(records), size, size, 3), np.uint8)
    pts = np.zeros((10, len(records), 68, 2), np.float32)
    for n, r in enumerate(records):
        i = identity_of(r.path.name)
        render = render_of(r.path.name)
        entry = identities[str(i)]
        ident = Identity.from_dict(entry["params"])
        for t in range(10):
            imgs[t, n], pts[t, n], _ = render_world_face(ident, entry["ages"][t], seed=int(meta["seed"]),
                                                         render=render, size=size, pose=float(meta["pose"]))
    x = torch.from_numpy(imgs).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    return x, torch.from_numpy(pts / (size - 1) * 2 - 1)        # as the reader's landmarks: [-1, 1] of the image


def evaluate(name, gen, x, lm, groups, ids, lookup, truth_lm, mean_face, mean_shape, probes, thresholds,
             emb_in, grid_dir, ages_real, matched=None, matched_lm=None):
    """Scores of one generator ``gen(x, t, lm) -> (images, masks, L* or None)``, or of a baseline."""
    age_acc = AgeAccuracy()
    estimates, targets_all = [], []
    cos_by_gap, verified = Paired(), {f: Paired() for f in thresholds}
    l1, ss, lmk = Paired(), Paired(), Paired()
    m_l1, m_ss, m_lmk = Paired(), Paired(), Paired()
    lstar, m_lstar = Paired(), Paired()
    masks, still = [], []
    young = groups <= 2
    grid_rows = []
    for t in range(10):
        tt = torch.full((len(x),), t, dtype=torch.long)
        out, mask, pred_lm = gen(x, tt, lm)
        gaps = np.abs(groups - t)
        has = np.array([(ids[i], t) in lookup for i in range(len(x))])
        j = np.array([lookup.get((ids[i], t), 0) for i in range(len(x))])
        true = x[j]
        if "age" in probes:
            est = probe(probes["age"], out).numpy()
            if young.any() and t >= 3:
                age_acc.update(est[young], [t], real=False)
                estimates += est[young].tolist()
                targets_all += [t] * int(young.sum())
        if "identity" in probes:
            e = torch.nn.functional.normalize(probe(probes["identity"], out), dim=1)
            cos = (e * emb_in).sum(1).numpy()
            cos_by_gap.add(cos[has], gaps[has])
            for far, thr in thresholds.items():
                verified[far].add((cos > thr).astype(np.float64)[has], gaps[has])
        l1.add((out - true).abs().flatten(1).mean(1).numpy()[has], gaps[has])
        ss.add(ssim((out + 1) / 2, (true + 1) / 2, data_range=1.0).numpy()[has], gaps[has])
        if "landmarks" in probes:
            p = probe(probes["landmarks"], out).reshape(-1, 68, 2)
            lmk.add(nme(p, truth_lm[j]).numpy()[has], gaps[has])
        if matched is not None:
            m_l1.add((out - matched[t]).abs().flatten(1).mean(1).numpy(), gaps)
            m_ss.add(ssim((out + 1) / 2, (matched[t] + 1) / 2, data_range=1.0).numpy(), gaps)
            if "landmarks" in probes:
                m_lmk.add(nme(p, matched_lm[t]).numpy(), gaps)
        if pred_lm is not None:
            lstar.add(nme(pred_lm, truth_lm[j]).numpy()[has], gaps[has])
            if matched is not None:
                m_lstar.add(nme(pred_lm, matched_lm[t]).numpy(), gaps)
        if mask is not None:
            masks.append(float(mask.mean()))
            keep = (mask > 0.99).expand_as(out)
            still.append(float((out - x).abs()[keep].mean()) if keep.any() else float("nan"))
        grid_rows.append(out)
    res = {"paired_L1": l1.summary(), "paired_SSIM": ss.summary()}
    if "landmarks" in probes:
        res["paired_landmark_nme"] = lmk.summary()
    if matched is not None:
        res["matched_L1"], res["matched_SSIM"] = m_l1.summary(), m_ss.summary()
        if "landmarks" in probes:
            res["matched_landmark_nme"] = m_lmk.summary()
    if lstar.v["small_1-3"]:
        res["G_L_landmark_nme"] = lstar.summary()
        if matched is not None:
            res["G_L_landmark_nme_matched"] = m_lstar.summary()
    if "identity" in probes:
        res["identity_cosine"] = cos_by_gap.summary()
        res["verification_rate"] = {f"far_{far:g}": v.summary() for far, v in verified.items()}
    if "age" in probes and estimates:
        for g in range(3, 10):
            age_acc.update(ages_real[g], [g], real=True)
        rows = age_rows(age_acc.compute())
        from scipy.stats import spearmanr
        res["age_table"] = rows
        res["age_table_md"] = format_age_table(rows, name)
        res["age_mean_abs_diff"] = float(np.mean([r["abs_diff"] for r in rows]))
        res["age_spearman_rho"] = float(spearmanr(targets_all, estimates).statistic)
    if masks:
        res["mask_mean_f_A"] = float(np.mean(masks))
        res["change_where_f_A_over_0.99"] = float(np.nanmean(still))
    if grid_dir is not None:
        # 8 identities from their 11-20 render: input, the ten groups; below each row the stored true renders
        # and (when given) the same photo re-drawn at each group
        sel = [i for i in range(len(x)) if groups[i] == 2][:8]
        tiles = []
        for i in sel:
            tiles.append(torch.cat([x[i]] + [grid_rows[t][i] for t in range(10)], 2))
            tiles.append(torch.cat([torch.full_like(x[i], 1.0)] + [x[lookup[(ids[i], t)]] for t in range(10)], 2))
            if matched is not None:
                tiles.append(torch.cat([torch.full_like(x[i], 1.0)] + [matched[t][i] for t in range(10)], 2))
        grid_dir.mkdir(parents=True, exist_ok=True)
        save_image(grid_dir / f"{name}.png", torch.cat(tiles, 1))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path)
    p.add_argument("--run", action="append", default=[], help="NAME=RUN (an ldcgan run, export or checkpoint)")
    p.add_argument("--age")
    p.add_argument("--identity")
    p.add_argument("--landmarks")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--out")
    p.add_argument("--grids", type=Path)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    test = UTKFaceDataset(args.world / "test", size=args.size, landmarks=True)
    train = UTKFaceDataset(args.world / "train", size=args.size, landmarks=True)
    x, lm = stack(test), stack(test, "landmarks")
    groups = np.array([r.group for r in test.records])
    ids = np.array([identity_of(r.path.name) for r in test.records])
    lookup = {(int(ids[i]), int(groups[i])): i for i in range(len(x))}
    train_x, train_lm = stack(train), stack(train, "landmarks")
    train_groups = np.array([r.group for r in train.records])
    mean_face = torch.stack([train_x[train_groups == g].mean(0) for g in range(10)])
    mean_shape = torch.stack([train_lm[train_groups == g].mean(0) for g in range(10)])
    t0 = time.perf_counter()
    matched, matched_lm = matched_targets(args.world, test.records, args.size)
    res_matched_check = float((matched[torch.as_tensor(groups), torch.arange(len(x))] - x).abs().mean())
    lm_check = float((matched_lm[torch.as_tensor(groups), torch.arange(len(x))] - lm).abs().max())
    if lm_check > 1e-4:
        raise SystemExit(f"{args.world}: re-drawn landmarks differ from the stored ones by {lm_check:.4f}: "
                         f"the world was written by another version of faces.py")
    print(f"matched targets: {matched.shape[0] * matched.shape[1]} renders in {time.perf_counter() - t0:.0f} s; "
          f"L1 of the re-drawn render at the stored age to the stored JPEG {res_matched_check:.4f}")
    probes = {k: load_pipeline(v, device="cpu") for k, v in (("age", args.age), ("identity", args.identity),
                                                             ("landmarks", args.landmarks)) if v}
    res: dict = {"world": str(args.world), "test_images": len(x), "test_identities": len(set(ids.tolist())),
                 "matched_rerender_L1_to_stored": res_matched_check}
    thresholds, emb_in, ages_real = {}, None, {}
    if "identity" in probes:
        emb_in = torch.nn.functional.normalize(probe(probes["identity"], x), dim=1)
        for far in (1e-2, 1e-3):
            r = tar_at_far(emb_in.numpy(), ids, far)
            thresholds[far] = r["threshold"]
            res[f"identity_probe_real_pairs_far_{far:g}"] = r
    if "age" in probes:
        est = probe(probes["age"], x).numpy()
        ages_real = {g: est[groups == g] for g in range(10)}
        res["age_probe_mae_real"] = float(np.abs(est - np.array([r.age for r in test.records])).mean())
    common = dict(x=x, lm=lm, groups=groups, ids=ids, lookup=lookup, truth_lm=lm, mean_face=mean_face,
                  mean_shape=mean_shape, probes=probes, thresholds=thresholds, emb_in=emb_in, ages_real=ages_real,
                  matched=matched, matched_lm=matched_lm)

    def baseline_input(xx, t, ll):
        return xx, None, None

    def baseline_mean(xx, t, ll):
        return mean_face[t], None, None

    def true_render(xx, t, ll):      # the upper bound: the same identity's real render at the target group
        return x[[lookup.get((int(ids[i]), int(t[i])), i) for i in range(len(xx))]], None, None

    res["baseline_output_equals_input"] = evaluate("input", baseline_input, grid_dir=None, **common)
    res["reference_true_render"] = evaluate("true_render", true_render, grid_dir=None, **common)
    res["baseline_group_mean_face"] = evaluate("mean_face", baseline_mean, grid_dir=None, **common)
    # landmarks of the baselines: L itself and the target group's mean shape
    for name, f in (("landmark_baseline_L", lambda t: lm), ("landmark_baseline_group_mean_shape",
                                                             lambda t: mean_shape[t].expand_as(lm))):
        acc, m_acc = Paired(), Paired()
        for t in range(10):
            has = np.array([(ids[i], t) in lookup for i in range(len(x))])
            j = np.array([lookup.get((ids[i], t), 0) for i in range(len(x))])
            acc.add(nme(f(t), lm[j]).numpy()[has], np.abs(groups - t)[has])
            m_acc.add(nme(f(t), matched_lm[t]).numpy(), np.abs(groups - t))
        res[name] = acc.summary()
        res[name + "_matched"] = m_acc.summary()
    for spec in args.run:
        name, path = spec.split("=", 1)
        pipe = load_pipeline(path, device="cpu")
        method = pipe.method

        def gen(xx, t, ll, method=method):
            outs, masks, lms = [], [], []
            for i in range(0, len(xx), 200):
                o, l_t = method.age(xx[i:i + 200], t[i:i + 200], ll[i:i + 200])
                outs.append(o.image), masks.append(o.mask)
                lms.append(l_t if l_t is not None else None)
            return torch.cat(outs), torch.cat(masks), (torch.cat(lms) if lms[0] is not None else None)

        t0 = time.perf_counter()
        gen(x[:400], torch.zeros(400, dtype=torch.long), lm[:400])
        ips = 400 / (time.perf_counter() - t0)
        res[name] = evaluate(name, gen, grid_dir=args.grids, **common)
        res[name]["images_per_s"] = ips
        res[name]["run"] = path
        if method.G_L is not None:      # the prototype shift of the same G_L checkpoint, for check 1
            acc, m_acc = Paired(), Paired()
            for t in range(10):
                has = np.array([(ids[i], t) in lookup for i in range(len(x))])
                j = np.array([lookup.get((ids[i], t), 0) for i in range(len(x))])
                proto = method.G_L.prototype(lm, torch.as_tensor(groups), torch.full((len(x),), t))
                acc.add(nme(proto, lm[j]).numpy()[has], np.abs(groups - t)[has])
                m_acc.add(nme(proto, matched_lm[t]).numpy(), np.abs(groups - t))
            res[name]["prototype_shift_landmark_nme"] = acc.summary()
            res[name]["prototype_shift_landmark_nme_matched"] = m_acc.summary()
    for k in list(res):
        if isinstance(res[k], dict) and "age_table_md" in res[k]:
            print(res[k]["age_table_md"])
    report(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

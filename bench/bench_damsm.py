"""Learning check: DAMSM on the shapes world reaches a held-out R-precision far above chance (0.01).

    OMP_NUM_THREADS=1 python bench/bench_damsm.py --n 1500 --minutes 7 > damsm.json

Trains configs/damsm/shapes64.yaml's model (bi-LSTM + small CNN, batch 48, Adam 2e-3) on a fresh
shapes world for a wall-clock budget, then reports, in one run and on the same held-out images:
R-precision (1 of 100 candidates, 10 splits) of the trained encoders, of the untrained encoders
(same initialisation), and of the trained encoders with shuffled captions; the same on the
compositional split (held-out (shape, colour) pairs); and, for a few test captions, each word's
top attention region and whether it lies on the object, plus the attention mass on the object
relative to its area for colour and shape words (1 = uniform). Prints JSON.

    OMP_NUM_THREADS=1 python bench/bench_damsm.py --data data/shapes64 --runs mean16=exports/damsm-shapes64 \
        flat32=exports/damsm-flat > damsm_compare.json

``--runs NAME=PATH ...`` scores trained encoders instead (DAMSM runs or exports), all on the same
held-out images: the R-precisions above, the
attention masses, and linear probes (logistic regression fitted on the training split's codes) of
each attribute from the global image code and from the sentence embedding, on the test split: what
the sentence loss can pass on to a generator.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from condsynth.data.synth import shapes
from condsynth.engine.config import build_experiment_config
from condsynth.metrics.text_image import r_precision
from condsynth.models import get_method_class
from condsynth.testing import fake_context


def embed_all(method, ds, perm=None):
    method.eval()
    codes, sents = [], []
    with torch.no_grad():
        for start in range(0, len(ds), 64):
            batch = [ds[i] for i in range(start, min(len(ds), start + 64))]
            imgs = torch.stack([b["image"] for b in batch])
            caps = torch.stack([b["caption"] for b in batch])
            lens = torch.tensor([b["length"] for b in batch])
            _, code = method.image_encoder(imgs)
            _, sent = method.text_encoder(caps, lens)
            codes.append(code)
            sents.append(sent)
    method.train()
    codes, sents = torch.cat(codes), torch.cat(sents)
    if perm is not None:
        sents = sents[perm]
    return codes, sents


def rprec(method, ds, perm=None):
    codes, sents = embed_all(method, ds, perm)
    mean, std = r_precision(codes, sents, candidates=min(100, len(ds)), splits=10, seed=0)
    return {"mean": round(mean, 4), "std": round(std, 4), "n": len(ds), "candidates": min(100, len(ds))}


def attention_report(method, ds, root: Path, n_captions: int = 4):
    """Top region per word for a few captions; attention mass on the object for colour/shape words."""
    attrs = json.loads((root / "attributes.json").read_text())
    colour_words = {w for ws in shapes._COLOUR_WORDS.values() for w in ws}
    shape_words = {w for ws in shapes._SHAPE_WORDS.values() for w in ws for w in w.split()} - {"shape", "round"}
    method.eval()
    shown, ratios = [], {"colour": [], "shape": []}
    with torch.no_grad():
        for i in range(min(len(ds), 200)):
            s = ds[i]
            regions, _ = method.image_encoder(s["image"][None])
            words, _ = method.text_encoder(s["caption"][None], torch.tensor([s["length"]]))
            from condsynth.losses.damsm import word_attention
            _, alpha = word_attention(words[:, :, :s["length"]], regions, method.model_cfg.gamma1)
            side = regions.shape[-1]
            mask = np.asarray(Image.open(root / "masks" / f"{s['key']}.png"))
            small = np.asarray(Image.fromarray((mask > 0).astype(np.uint8) * 255).resize((side, side), Image.BOX)) / 255.0
            toks = method.vocab.decode(s["caption"][:s["length"]].tolist())
            rows = []
            for k, w in enumerate(toks):
                a = alpha[0, k].reshape(side, side).numpy()
                top = int(a.argmax())
                r, c = divmod(top, side)
                ratio = float((a * small).sum() / max(small.mean(), 1e-6))
                if w in colour_words:
                    ratios["colour"].append(ratio)
                if w in shape_words:
                    ratios["shape"].append(ratio)
                rows.append({"word": w, "top_region": [r, c], "on_object": bool(small[r, c] > 0.5),
                             "mass_on_object_over_area": round(ratio, 2)})
            if len(shown) < n_captions:
                a_ = attrs[s["key"]]
                shown.append({"key": s["key"], "caption": " ".join(toks), "position": a_["position"],
                              "object_boxes": a_["object_boxes"], "words": rows})
    method.train()
    return shown, {k: {"median": round(float(np.median(v)), 2), "n": len(v)} for k, v in ratios.items() if v}


def linear_probes(method, train_ds, test_ds, root: Path) -> dict:
    """Held-out accuracy of a logistic regression per attribute, from the image code and the sentence."""
    from sklearn.linear_model import LogisticRegression
    attrs = json.loads((root / "attributes.json").read_text())
    feats = {}
    for name, ds in (("train", train_ds), ("test", test_ds)):
        codes, sents = embed_all(method, ds)
        keys = [ds.items[i].key for i in range(len(ds))]
        feats[name] = (codes.numpy(), sents.numpy(), keys)
    out = {}
    for attr in ("colour", "shape", "size", "position", "count", "texture"):
        row = {}
        for j, which in ((0, "image_code"), (1, "sentence")):
            xtr, xte = feats["train"][j], feats["test"][j]
            ytr = [str(attrs[k][attr]) for k in feats["train"][2]]
            yte = [str(attrs[k][attr]) for k in feats["test"][2]]
            clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
            row[which] = round(float(clf.score(xte, yte)), 3)
        row["chance_majority"] = round(max(yte.count(v) for v in set(yte)) / len(yte), 3)
        out[attr] = row
    return out


def compare(args) -> int:
    """Score existing encoders (``--runs``) on the same held-out images."""
    from condsynth.data.captions import CaptionDataset
    from condsynth.engine.checkpoint import load_for_inference
    out = {"chance": 0.01, "runs": {}}
    raw = {"method": "damsm", "model": {"image_encoder": "small_cnn"},
           "data": {"root": str(args.data), "layout": "cub", "image_size": args.size, "flip": False, "words_num": 15}}
    data_cfg = build_experiment_config(raw).data
    for spec in args.runs:
        name, path = spec.split("=", 1)
        method, cfg, _ = load_for_inference(path)
        if cfg.method != "damsm":
            raise SystemExit(f"{path}: a {cfg.method} checkpoint; --runs takes DAMSM runs or exports")
        test_ds = CaptionDataset(data_cfg, "test", method.vocab, train=False)
        comp_ds = CaptionDataset(data_cfg, "compositional", method.vocab, train=False)
        train_ds = CaptionDataset(data_cfg, "train", method.vocab, train=False)
        perm = torch.from_numpy(np.random.default_rng(1).permutation(len(test_ds)))
        _, mass = attention_report(method, test_ds, args.data)
        out["runs"][name] = {
            "path": path, "method": cfg.method,
            "r_precision_test": {"trained": rprec(method, test_ds), "shuffled_captions": rprec(method, test_ds, perm)},
            "r_precision_compositional": rprec(method, comp_ds),
            "attention_mass_on_object_over_area": mass,
            "linear_probe_test_accuracy": linear_probes(method, train_ds, test_ds, args.data)}
        print(f"{name}: R-precision {out['runs'][name]['r_precision_test']['trained']}", file=sys.stderr)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", help="NAME=PATH: score these trained encoders instead of training")
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--minutes", type=float, default=7.0, help="training wall-clock budget")
    p.add_argument("--max-steps", type=int, default=100000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--data", type=Path, default=None, help="an existing shapes world (else a temporary one)")
    p.add_argument("--text-encoder", default="rnn")
    p.add_argument("--cnn-width", type=int, default=32, help="small CNN width (16: ~4x cheaper per step)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.runs:
        if args.data is None:
            p.error("--runs needs --data (the shapes world they were trained on)")
        return compare(args)
    torch.manual_seed(args.seed)
    root = args.data
    if root is None:
        root = Path(tempfile.mkdtemp()) / "shapes"
        shapes.write_dataset(root, args.n, size=args.size, seed=args.seed, progress=False)
    raw = {"method": "damsm",
           "model": {"text_encoder": args.text_encoder, "image_encoder": "small_cnn", "cnn_width": args.cnn_width},
           "data": {"root": str(root), "layout": "cub", "image_size": args.size, "flip": False, "words_num": 15},
           "train": {"batch_size": args.batch, "threads": 1}}
    cfg = build_experiment_config(raw)
    method = get_method_class("damsm")(cfg.model, cfg.data)
    method.setup_training()
    untrained = copy.deepcopy(method)
    train_ds = method.build_dataset("train")
    test_ds = method.build_dataset("test")
    comp_ds = type(test_ds)(cfg.data, "compositional", method.vocab, train=False)
    opts = method.configure_optimizers(cfg.train)
    ctx = fake_context(method, opts)
    rng = np.random.default_rng(args.seed)
    start, step, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < args.minutes * 60 and step < args.max_steps:
        idx = rng.choice(len(train_ds), args.batch, replace=False)
        items = [train_ds[(int(i), int(rng.integers(2 ** 31)))] for i in idx]
        batch = {"image": torch.stack([b["image"] for b in items]),
                 "caption": torch.stack([b["caption"] for b in items]),
                 "length": torch.tensor([b["length"] for b in items]),
                 "class_id": torch.tensor([b["class_id"] for b in items])}
        logs = method.training_step(batch, ctx)
        losses.append(float(logs["loss"]))
        step += 1
    train_s = time.perf_counter() - start
    perm = torch.from_numpy(np.random.default_rng(1).permutation(len(test_ds)))
    examples, mass = attention_report(method, test_ds, root)
    out = {
        "world": {"n": args.n, "size": args.size, "splits": {"train": len(train_ds), "test": len(test_ds),
                                                              "compositional": len(comp_ds)},
                  "vocab": len(method.vocab)},
        "train": {"steps": step, "seconds": round(train_s, 1), "s_per_step": round(train_s / max(step, 1), 3),
                  "batch": args.batch, "loss_first_20": round(float(np.mean(losses[:20])), 3),
                  "loss_last_20": round(float(np.mean(losses[-20:])), 3), "text_encoder": args.text_encoder},
        "r_precision_test": {"trained": rprec(method, test_ds), "untrained": rprec(untrained, test_ds),
                             "trained_shuffled_captions": rprec(method, test_ds, perm)},
        "r_precision_compositional": {"trained": rprec(method, comp_ds), "untrained": rprec(untrained, comp_ds)},
        "chance": 0.01,
        "attention_mass_on_object_over_area": mass,
        "attention_examples": examples,
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""AVWnet on held-out talking-world clips: a table in the form of the thesis's Table 5.1, every row measured in this
run, and the generator's speed at 128x128.

Rows (all on the same clips, the same 16-frame window on the word centre, frames 6..21 of 29; the example face
I* is the clip's first frame):

* real video (the upper bound of the readers, the floor of the landmark probe);
* static: the example face repeated (the baseline);
* AVWnet driven by the ground-truth landmarks;
* AVWnet driven by AT-net's landmarks predicted from the audio and L* (the thesis's test condition).

Columns: LMD (mouth points 48-67, centroids removed, mean over points and frames, in pixels of the 64^2 frame and
scaled to 128^2) between the landmark probe's points on the generated and on the real frame; PSNR in the mouth box
(the box of the real frame's mouth points), full-frame SSIM and PSNR (uint8 RGB, ``condsynth.metrics``); and the
word accuracy of the **evaluation** reader (c3d, never used in training) on the generated window. The landmark probe
(:class:`~condsynth.models.face_probe.FaceProbeNet`, 68 points) is trained here on the training split's real frames
with their exact landmarks (``--probe-steps``), never on generated frames.

Speed: frames per second of the generator at 128x128 (batch 1, chunks of 16 frames, one thread), the bundled
(talking64) widths and the paper widths, with the audio encoder and the ConvGRU timed apart from the rest.

    PYTHONPATH=src python bench/bench_avwnet.py --data world/prepared --avwnet RUN [NAME=RUN ...] --reader RUN_C3D \
        [--split test] [--out result.json] [--strip frames.png]

Several ``--avwnet`` runs (variants, seeds) each add their rows, named ``NAME, ground-truth landmarks`` and, when
the run has an AT-net (its own, or ``--atnet``'s for runs trained without one), ``NAME, AT-net landmarks``. The
first run is the one the strip, the AT-net error, the ``talk`` check and the speed use.

Table 5.2's form (the ablation, ground-truth landmarks only): name the runs ``VARIANT/SEED`` and add ``--truth-only``;
rows that share a VARIANT are then summarised as mean +- std over their seeds (``"variants"`` in the JSON), each with
its change from the first variant paired by seed.

    PYTHONPATH=src python bench/bench_avwnet.py --data world/prepared --reader RUN_C3D --truth-only --no-speed \
        --avwnet full/s0=RUN full/s1=RUN noam/s0=RUN noam/s1=RUN ...
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.data.talking import TalkingDataConfig, TalkingWindowDataset
from condsynth.engine.checkpoint import load_for_inference
from condsynth.metrics.image_quality import psnr, ssim
from condsynth.metrics.lmd import frame_lmd
from condsynth.models.avwnet.avwnet import mouth_box_mask, reader_input
from condsynth.models.avwnet.nets import AVWnetGenerator
from condsynth.models.face_probe import FaceProbeNet
from condsynth.models.lipreader import word_log_probs


def train_probe(ds: TalkingWindowDataset, steps: int, seed: int = 0) -> FaceProbeNet:
    """68-point regressor on real training frames (exact landmarks), L1 in normalised units."""
    torch.manual_seed(seed)
    frames = np.concatenate([c["crops"] for c in ds.clips])
    lms = ds.all_landmarks()
    net = FaceProbeNet(16, 136)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        i = rng.integers(0, len(frames), 64)
        x = torch.from_numpy(frames[i]).permute(0, 3, 1, 2).float() / 127.5 - 1
        loss = F.l1_loss(net(x).view(-1, 68, 2), torch.from_numpy(lms[i]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def probe_points(net, frames: torch.Tensor, size: int) -> np.ndarray:
    """N x 3 x S x S in [-1, 1] -> N x 68 x 2 crop pixels."""
    out = torch.cat([net(frames[i:i + 256]) for i in range(0, len(frames), 256)])
    return ((out.view(-1, 68, 2) + 1) * (size / 2)).numpy()


def quantise(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 levels as float (what a video stores)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round()


@torch.no_grad()
def generate(method, item, landmarks: str):
    ex, mfcc = item["example"][None], item["mfcc"][None]
    ex_lm = item["example_landmarks"][None]
    lm = item["landmarks"][None]
    if landmarks == "atnet":
        lm, _ = method.predict_landmarks(ex_lm, mfcc)
    return method.talk(ex, mfcc, lm, ex_lm).stage1[0]


@torch.no_grad()
def measure_atnet(method, test: TalkingWindowDataset, lm_true: torch.Tensor, s: int) -> dict:
    ex_lm = torch.stack([test[i]["example_landmarks"] for i in range(len(test))])
    mf = torch.stack([test[i]["mfcc"] for i in range(len(test))])
    pred, _ = method.predict_landmarks(ex_lm, mf)
    mouth = slice(48, 68)
    true_px, pred_px = lm_true.flatten(0, 1).numpy() * s / 2, pred.flatten(0, 1).numpy() * s / 2
    still_px = ex_lm[:, None].expand_as(lm_true).flatten(0, 1).numpy() * s / 2
    return {"mouth_point_error_px": float(((pred - lm_true)[..., mouth, :].norm(dim=-1) * s / 2).mean()),
            "static_mouth_point_error_px": float(((ex_lm[:, None] - lm_true)[..., mouth, :].norm(dim=-1)
                                                  * s / 2).mean()),
            "mouth_lmd_px_centred": float(np.mean(frame_lmd(true_px, pred_px))),
            "static_mouth_lmd_px_centred": float(np.mean(frame_lmd(true_px, still_px)))}


def time_generator(n_i: int, audio_channels, audio_fc: int, frames: int = 32, chunk: int = 16) -> dict:
    torch.manual_seed(0)
    g = AVWnetGenerator(128, n_i, audio_channels=audio_channels, audio_fc=audio_fc).eval()
    ex, lm = torch.zeros(1, 3, 128, 128), torch.zeros(1, chunk, 68, 2)
    mfcc = torch.randn(1, chunk, 1, 28, 12)
    with torch.no_grad():
        enc = g.encode_example(ex, lm[:, 0])
        g(ex, mfcc, lm, lm[:, 0], encoded=enc)                      # warm-up
        t0 = time.perf_counter()
        state = None
        for _ in range(frames // chunk):
            state = g(ex, mfcc, lm, lm[:, 0], state, enc).state
        total = (time.perf_counter() - t0) / frames
        t0 = time.perf_counter()
        for _ in range(frames // chunk):
            g.E_a(mfcc)
        audio = (time.perf_counter() - t0) / frames
        h = torch.randn(1, chunk, g.rnn.cell.gates.in_channels - g.rnn.cell.hidden, 8, 8)
        t0 = time.perf_counter()
        for _ in range(frames // chunk):
            g.rnn(h)
        rnn = (time.perf_counter() - t0) / frames
    return {"fps": 1 / total, "ms_per_frame": 1000 * total, "audio_encoder_ms": 1000 * audio, "convgru_ms": 1000 * rnn,
            "rest_ms": 1000 * (total - audio - rnn), "parameters_M": sum(p.numel() for p in g.parameters()) / 1e6}


def inner_lip_gap(pts: np.ndarray) -> np.ndarray:
    """Inner-lip opening (points 62-66, 0-based) over the outer-eye-corner distance (36-45), per frame."""
    return np.linalg.norm(pts[:, 62] - pts[:, 66], axis=1) / np.linalg.norm(pts[:, 36] - pts[:, 45], axis=1)


def dlib_points(crops, upscale: int = 4) -> np.ndarray | None:
    """dlib's 68 points on each generated crop (upscaled, bicubic), in crop pixels; the face box is detected once on
    the first crop, since the crops are aligned. dlib was trained on real photos, unlike the world probe, so it is
    the reading for a real photo's output. None without dlib or without a face."""
    from PIL import Image

    from condsynth.errors import UserError
    from condsynth.io.faces import FaceAnalyzer
    try:
        analyzer = FaceAnalyzer()
    except UserError:           # dlib is an optional extra
        return None
    big = [np.asarray(Image.fromarray(c).resize((c.shape[1] * upscale, c.shape[0] * upscale), Image.BICUBIC))
           for c in crops]
    face = analyzer.detect(big[0])
    if face is None:
        return None
    return np.stack([analyzer.landmarks(b, face) for b in big]) / upscale


def talk_check(args, probe, size: int) -> dict:
    """`condsynth talk`'s pipeline on a photo and a speech file: frames, audio length, and whether the mouth follows
    the loudness (Pearson r of the inner-lip opening with the RMS envelope in 40 ms frames; the opening in the
    silent frames against the speaking ones), on the driving AT-net landmarks and on the probe's points read from
    the generated frames."""
    from condsynth.io.audio import read_audio
    from condsynth.io.images import save_image
    from condsynth.io.video import read_frames
    from condsynth.pipelines.talking_face import TalkingFacePipeline
    pipe = TalkingFacePipeline.from_pretrained(args.avwnet, device="cpu")
    t0 = time.perf_counter()
    out = pipe(args.talk_face, args.talk_audio, chunk=16)
    seconds = time.perf_counter() - t0
    out.save(args.talk_out)
    n = len(out.frames)
    x = out.audio
    rms = np.array([np.sqrt(np.mean(x[k * 640:(k + 1) * 640] ** 2)) if len(x[k * 640:(k + 1) * 640]) else 0.0
                    for k in range(n)])
    silent = rms < 0.01
    gen = torch.from_numpy(np.stack(out.crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    res = {"frames": n, "expected_frames": round(25 * len(x) / 16000), "audio_seconds": len(x) / 16000,
           "written_frames": len(read_frames(args.talk_out)),
           "written_audio_seconds": len(read_audio(args.talk_out)) / 16000, "seconds": seconds,
           "silent_frames": int(silent.sum())}
    readings = [("driving_landmarks", out.landmarks), ("probe_on_output", probe_points(probe, gen, size))]
    dlib_pts = dlib_points(out.crops)
    if dlib_pts is not None:
        readings.append(("dlib_on_output", dlib_pts))
    for name, pts in readings:
        gap = inner_lip_gap(pts)
        res[name] = {"pearson_r_rms": float(np.corrcoef(gap, rms)[0, 1]),
                     "gap_silent": float(gap[silent].mean()) if silent.any() else None,
                     "gap_speaking": float(gap[~silent].mean())}
    strip = np.concatenate([np.concatenate(out.crops[k:k + 20:2], 1) for k in range(0, min(n, 120), 20)], 0)
    save_image(args.talk_out.rsplit(".", 1)[0] + "_frames.png", strip)
    return res


def variant_summary(table: dict) -> dict:
    """Rows named ``VARIANT/SEED, DRIVER``: per variant and driver, each column's mean and std (ddof 1) over the
    seeds, and the mean change from the first variant over the seeds both have."""
    groups: dict[str, dict[str, dict]] = {}
    for row, cols in table.items():
        run, _, driver = row.partition(", ")
        if "/" in run:
            variant, seed = run.rsplit("/", 1)
            groups.setdefault(f"{variant}, {driver}", {})[seed] = cols
    if not groups:
        return {}
    first = next(iter(groups.values()))
    out = {}
    for key, seeds in groups.items():
        out[key] = {"seeds": len(seeds)}
        for col in next(iter(seeds.values())):
            vals = np.array([c[col] for c in seeds.values()])
            paired = [seeds[k][col] - first[k][col] for k in seeds if k in first]
            out[key][col] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                             "change": float(np.mean(paired)) if paired else float("nan")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--avwnet", required=True, nargs="+",
                    help="AVWnet runs / checkpoints, each RUN or NAME=RUN; the first one's AT-net is measured")
    ap.add_argument("--atnet", default=None,
                    help="an AT-net run (avwnet_atnet) to drive the --avwnet runs that were trained without one")
    ap.add_argument("--reader", required=True, help="the evaluation lip reader (c3d) run")
    ap.add_argument("--split", default="test")
    ap.add_argument("--probe-steps", type=int, default=600)
    ap.add_argument("--out", default=None)
    ap.add_argument("--strip", default=None, help="PNG: real / static / GT-driven / AT-net-driven frames")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--talk-face", default=None, help="a photo for the `talk` check (with --talk-audio)")
    ap.add_argument("--talk-audio", default=None)
    ap.add_argument("--talk-out", default="talk.mp4")
    ap.add_argument("--truth-only", action="store_true",
                    help="only the ground-truth-landmark rows of each run (Table 5.2's protocol)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    runs = [a.split("=", 1) if "=" in a else ("AVWnet", a) for a in args.avwnet]
    if len({name for name, _ in runs}) < len(runs):
        raise SystemExit("bench_avwnet: --avwnet: give each run a distinct NAME= (e.g. seed0=RUN seed1=RUN)")
    methods = {name: load_for_inference(run, "avwnet") for name, run in runs}
    if args.atnet:
        shared_atnet = load_for_inference(args.atnet, "avwnet_atnet")[0].atnet
        for m, _, _ in methods.values():
            if m.atnet is None:
                m.atnet = shared_atnet
    method, _, folder = methods[runs[0][0]]
    args.avwnet = runs[0][1]
    reader, rcfg, _ = load_for_inference(args.reader, "lipreader")
    view = (rcfg.data.roi, rcfg.data.mouth_box, rcfg.data.size)
    cfg = TalkingDataConfig(root=args.data, frames=16)
    test = TalkingWindowDataset(cfg, args.split, train=False)
    train = TalkingWindowDataset(cfg, "train", train=False)
    s = test.size
    t0 = time.perf_counter()
    probe = train_probe(train, args.probe_steps)
    probe_s = time.perf_counter() - t0

    rows = {"real video": [], "static example face": []}
    drivers = {}                                         # row name -> (method, landmarks)
    for name, (m, _, _) in methods.items():
        drivers[f"{name}, ground-truth landmarks"] = (m, "truth")
        if m.atnet is not None and not args.truth_only:
            drivers[f"{name}, AT-net landmarks"] = (m, "atnet")
    rows.update({row: [] for row in drivers})
    labels = []
    gen_time = 0.0
    for i in range(len(test)):
        item = test[i]
        labels.append(int(item["label"]))
        real = item["frames"]
        rows["real video"].append(real)
        rows["static example face"].append(item["example"][None].expand_as(real))
        t = time.perf_counter()
        for row, (m, landmarks) in drivers.items():
            rows[row].append(generate(m, item, landmarks))
        gen_time += time.perf_counter() - t
    labels = np.array(labels)
    reals = torch.stack(rows["real video"])                                   # N x T x 3 x S x S
    lm_true = torch.stack([test[i]["landmarks"] for i in range(len(test))])  # N x T x 68 x 2 normalised
    real_q = quantise(reals).flatten(0, 1)
    real_pts = probe_points(probe, reals.flatten(0, 1), s)
    mask = mouth_box_mask(lm_true.flatten(0, 1), s, 0).bool()
    table = {}
    for name, vids in rows.items():
        v = torch.stack(vids)
        q = quantise(v).flatten(0, 1)
        pts = probe_points(probe, q / 127.5 - 1, s)
        lmd = frame_lmd(real_pts, pts, "mouth")
        mse_mouth = torch.stack([((a - b)[m.expand_as(a)] ** 2).mean() for a, b, m in zip(q, real_q, mask)])
        with torch.no_grad():
            scores = word_log_probs(reader.read(reader_input(q.view_as(v) / 127.5 - 1, *view))).numpy()
        table[name] = {
            "LMD_mouth_px64": float(lmd.mean()), "LMD_mouth_px128": float(lmd.mean() * 128 / s),
            "mouth_PSNR": float((10 * torch.log10(255 ** 2 / mse_mouth.clamp_min(1e-10))).mean()),
            "SSIM": float(ssim(q, real_q, data_range=255).mean()),
            "PSNR": float(psnr(q, real_q, data_range=255).clamp(max=100).mean()),
            "word_accuracy_eval_reader": float((scores.argmax(1) == labels).mean())}
    # AT-net's own landmark error (normalised units -> 64^2 pixels), against the static example landmark: the AT-net
    # of the first run that has one
    with_atnet = [m for m, _, _ in methods.values() if m.atnet is not None]
    atnet = measure_atnet(with_atnet[0], test, lm_true, s) if with_atnet else None
    result = {"checkpoint": str(folder), "runs": dict(runs), "data": args.data, "split": args.split, "clips": len(test),
              "frames_per_clip": 16, "size": s, "chance": 1 / len(test.words), "table": table, "atnet": atnet,
              "probe": {"steps": args.probe_steps, "seconds": probe_s},
              "generation_fps_64_bundled": len(drivers) * 16 * len(test) / gen_time}
    if not args.no_speed:
        c = method.model_cfg
        result["speed_128"] = {"bundled widths": time_generator(c.n_i, tuple(c.audio_channels), c.audio_fc),
                               "paper widths": time_generator(128, (64, 128, 256, 256, 512), 2048)}
    print(f"{len(test)} held-out clips ({args.split}), 16 frames each, {s}x{s}; chance {1 / len(test.words):.3f}")
    width = max(map(len, table)) + 1
    print(f"{'':{width}s} {'LMD(64)':>8s} {'LMD(128)':>8s} {'mouthPSNR':>9s} {'SSIM':>6s} {'PSNR':>6s} {'words':>6s}")
    for name, r in table.items():
        print(f"{name:{width}s} {r['LMD_mouth_px64']:8.3f} {r['LMD_mouth_px128']:8.3f} {r['mouth_PSNR']:9.2f} "
              f"{r['SSIM']:6.3f} {r['PSNR']:6.2f} {r['word_accuracy_eval_reader']:6.3f}")
    result["variants"] = variant_summary(table)
    for variant, cols in result["variants"].items():
        print(f"{variant} ({cols['seeds']} seeds): " + ", ".join(
            f"{k} {v['mean']:.3f} +- {v['std']:.3f} (change {v['change']:+.3f})" for k, v in cols.items()
            if isinstance(v, dict)))
    print("AT-net:", json.dumps(atnet))
    if "speed_128" in result:
        print("speed at 128x128:", json.dumps(result["speed_128"]))
    if args.talk_face:
        result["talk"] = talk_check(args, probe, s)
        print("talk:", json.dumps(result["talk"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    if args.strip:
        from condsynth.io.images import save_image
        k = min(3, len(test))
        tiles = []
        for c in range(k):
            for name in rows:
                v = quantise(rows[name][c][::2]).byte().permute(0, 2, 3, 1).numpy()      # every other frame
                tiles.append(np.concatenate(list(v), 1))
        save_image(args.strip, np.concatenate(tiles, 0))


if __name__ == "__main__":
    main()

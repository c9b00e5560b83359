"""MFCC parity and speed: condsynth.io.mfcc (torch) against python_speech_features (ATVGnet's reference,
an independent implementation) on espeak-ng speech in every voice of the talking world, at several rates.

Reports the maximum absolute difference of the 13 cepstra (float64), of the 28 x 12 per-frame windows the
networks see (float32), the largest value for scale, and the seconds of audio processed per second.

    PYTHONPATH=src python bench/bench_mfcc.py [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main(argv=None) -> int:
    import python_speech_features as psf

    from condsynth.data.synth.speech import VOICES, synthesize
    from condsynth.io.mfcc import mfcc, pad_for_windows, speech_windows
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows, worst, worst_w, peak, audio_s, ours_s, ref_s = [], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for voice in VOICES:
        for rate in (130, 190):
            x = synthesize("we heard the word children today and then people said money", voice, rate).samples
            t = time.perf_counter()
            a = mfcc(x).numpy()
            w = speech_windows(x).numpy()
            ours_s += time.perf_counter() - t
            t = time.perf_counter()
            b = psf.mfcc(x.astype(np.float64), 16000, winstep=0.01)
            ref_s += time.perf_counter() - t
            n = w.shape[0]
            ref_w = psf.mfcc(pad_for_windows(x, n), 16000, winstep=0.01)
            ref_w = np.stack([ref_w[4 * k:4 * k + 28, 1:] for k in range(n)])
            d, dw = float(np.abs(a - b).max()), float(np.abs(w - ref_w).max())
            worst, worst_w, peak = max(worst, d), max(worst_w, dw), max(peak, float(np.abs(b).max()))
            audio_s += len(x) / 16000
            rows.append({"voice": voice, "rate": rate, "seconds": len(x) / 16000, "max_abs_diff": d,
                         "windows_max_abs_diff": dw})
            print(f"{voice:>9} {rate} wpm {len(x) / 16000:.2f} s: cepstra max |diff| {d:.2e}, "
                  f"float32 windows {dw:.2e}")
    res = {"clips": len(rows), "audio_seconds": audio_s, "max_abs_diff": worst, "windows_max_abs_diff": worst_w,
           "max_abs_value": peak, "ours_audio_s_per_s": audio_s / ours_s, "psf_audio_s_per_s": audio_s / ref_s,
           "rows": rows}
    print(f"all {len(rows)} clips ({audio_s:.1f} s): max |diff| {worst:.2e} (cepstra, float64), {worst_w:.2e} "
          f"(windows, float32) for values up to {peak:.1f}; speed {res['ours_audio_s_per_s']:.0f}x real time "
          f"(python_speech_features {res['psf_audio_s_per_s']:.0f}x)")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

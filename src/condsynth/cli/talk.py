"""``condsynth talk --face IMAGE --audio SPEECH --out video.mp4``: a photo that says the speech (AVWnet).

The face is found (dlib) and aligned to the model's template; the audio (any rate, channels, container) becomes
per-frame MFCC windows; AT-net predicts the landmarks and the generator the frames, in chunks with the recurrent
states carried; the output has round(25 x duration) frames, h264 with the input audio. ``--paste-back`` writes the
whole photo instead of the aligned crop.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from condsynth.cli.options import THREADS, add_overwrite, int_in
from condsynth.errors import UserError

VIDEO_OUT = (".mp4", ".mkv", ".mov")
DEFAULT_CHECKPOINT = "avwnet-talking64"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "talk", help="make a face photo say a speech file (AVWnet)",
        description="One face photo and one speech file -> a lip-synced 25 fps video with the speech as its audio "
                    "track. The face is found (dlib) and aligned to the model's template; long audio is generated "
                    "in chunks with the recurrent state carried.")
    p.add_argument("--face", required=True, help="face photo (any format Pillow reads)")
    p.add_argument("--audio", required=True, help="speech: wav, flac, mp3, m4a, ogg or a video's audio track")
    p.add_argument("--out", "-o", required=True, help="output video (.mp4, .mkv or .mov)")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help=f"an AVWnet export, run or checkpoint with its AT-net (default: the bundled "
                        f"{DEFAULT_CHECKPOINT}, trained on the talking world at 64x64)")
    p.add_argument("--paste-back", action="store_true", help="write the whole photo, the face pasted back")
    p.add_argument("--chunk", type=int_in(1, 100_000), default=64, help="frames per generator pass (default 64)")
    p.add_argument("--crop-size", type=int_in(16, 4096), default=256,
                   help="side of the aligned crop pasted back with --paste-back (default 256)")
    p.add_argument("--min-face-size", type=int_in(1, 100_000), default=40,
                   help="refuse a face smaller than this many pixels (default 40)")
    p.add_argument("--threads", type=THREADS, default=0, help="CPU threads (0: torch's default)")
    add_overwrite(p, "an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() not in VIDEO_OUT:
        raise UserError(f"{args.out}: output video must end in {', '.join(VIDEO_OUT)}")
    for flag, path in (("--face", args.face), ("--audio", args.audio)):
        if not Path(path).is_file():
            raise UserError(f"{path}: file not found ({flag})")

    import torch

    from condsynth.engine.checkpoint import checkpoint_inputs
    from condsynth.io.outputs import check_output
    from condsynth.pipelines.talking_face import TalkingFacePipeline
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    pipe = TalkingFacePipeline.from_pretrained(args.checkpoint, device="cpu")
    check_output(args.out, inputs=[args.face, args.audio, *checkpoint_inputs(pipe.source)], overwrite=args.overwrite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipe(args.face, args.audio, paste_back=args.paste_back, chunk=args.chunk, crop_size=args.crop_size,
                   min_face_size=args.min_face_size)
    for w in caught:
        print(f"condsynth: warning: {w.message}")
    out.save(args.out)
    h, w = out.frames[0].shape[:2]
    print(f"{args.out}: {len(out.frames)} frames at {out.fps} fps ({out.info['seconds']:.2f} s of audio), {w}x{h}")
    return 0

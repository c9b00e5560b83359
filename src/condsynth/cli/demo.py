"""``condsynth demo [--port P] [--share-nothing]``: every bundled model in a local web page.

A tab per method that can run here (paint, translate, text to image, face aging, and talking face when
``--talk-checkpoint`` names an AVWnet export); the About tab says what is missing and which extra to install.
Uploads and results live in a temporary folder that is removed when the demo stops (Ctrl-C).
"""

from __future__ import annotations

import argparse
import signal

from condsynth.cli.options import THREADS, int_in


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="try every bundled model in a local web page (needs the 'demo' extra)",
        description="Start a local web app (Gradio) with a tab per method: paint a photo, translate a label map, "
                    "generate from a caption, age a face, make a photo talk. It listens on this computer only "
                    "(127.0.0.1) unless --host says otherwise; nothing is sent anywhere.")
    p.add_argument("--port", type=int_in(1, 65535), default=None,
                   help="port to listen on (default: 7860, or the next free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 serves your network: anyone who can "
                        "reach this computer can then use it)")
    p.add_argument("--share-nothing", action="store_true",
                   help="localhost only whatever --host says, and no API page or programmatic API endpoints: "
                        "only the page itself can run the models")
    p.add_argument("--talk-checkpoint", default=None, metavar="PATH",
                   help="an AVWnet export, run or checkpoint for the talking-face tab (e.g. the bundled "
                        "avwnet-talking64)")
    p.add_argument("--threads", type=THREADS, default=0, help="CPU threads (0: torch's default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsynth.demo.app import build_app, demo_session, import_gradio, launch
    from condsynth.demo.runner import DemoRunner
    from condsynth.errors import UserError
    if args.share_nothing and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise UserError(f"--host {args.host}: --share-nothing serves this computer only (127.0.0.1)")
    if args.talk_checkpoint is not None:
        from condsynth.engine.checkpoint import load_for_inference
        load_for_inference(args.talk_checkpoint)         # a wrong path fails here, before the page starts
    import_gradio()
    import torch
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, _interrupt)      # `kill` stops it like Ctrl-C: the temporary folder is removed
    with demo_session() as folder:
        runner = DemoRunner(folder / "results", talk_checkpoint=args.talk_checkpoint)
        for tab in runner.tabs():
            if not tab.available:
                print(f"condsynth demo: not shown: {tab.missing}")
        app = build_app(runner, share_nothing=args.share_nothing)
        try:
            launch(app, host=args.host, port=args.port, share_nothing=args.share_nothing, block=False,
                   allowed=[str(folder)])
            print(f"condsynth demo: open {app.local_url} in a browser (Ctrl-C stops it)", flush=True)
            app.block_thread()
        except KeyboardInterrupt:
            pass
        finally:
            app.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt

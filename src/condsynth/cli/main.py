"""Entry point of the ``condsynth`` command.

User mistakes (:class:`~condsynth.errors.UserError`) end as one line on stderr,
``condsynth: error: ...``, with exit code 2; nothing is left half-written because every output
is written atomically. Set ``CONDSYNTH_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys

from condsynth import __version__
from condsynth.errors import TrainingDiverged, UserError

# Verb modules, in the order `condsynth --help` lists them. A module is imported only to
# register its arguments; heavy imports belong inside its run() function.
COMMANDS = [
    "condsynth.cli.train",
    "condsynth.cli.translate",
    "condsynth.cli.export",
    "condsynth.cli.data",
    "condsynth.cli.eval",
    "condsynth.cli.paint",
    "condsynth.cli.age",
    "condsynth.cli.talk",
    "condsynth.cli.text2image",
    "condsynth.cli.demo",
]


class Parser(argparse.ArgumentParser):
    """Argument mistakes as one line too: ``condsynth: error: --seed: must be ...``."""

    def error(self, message: str):
        message = re.sub(r"^argument ", "", message)
        self.exit(2, f"condsynth: error: {message} (see {self.prog} --help)\n")


# OSErrors that are the machine's state or the user's paths, not a bug: one line, like a UserError.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                      errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EMFILE, errno.EIO}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="condsynth",
        description="Conditional visual synthesis: train, evaluate and run the toolkit's methods.")
    parser.add_argument("--version", action="version", version=f"condsynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    # Subnormal floats make trained networks several times slower on x86 CPUs (see
    # TrainConfig.flush_denormal); every command runs with them flushed to zero, except `train`,
    # whose config decides (train.flush_denormal).
    if args.command != "train":
        import torch
        torch.set_flush_denormal(True)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if os.environ.get("CONDSYNTH_DEBUG"):
            raise
        print(f"condsynth: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if os.environ.get("CONDSYNTH_DEBUG") or exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        from condsynth.io.atomic import os_reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"condsynth: error: {where}{os_reason(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        if os.environ.get("CONDSYNTH_DEBUG"):
            raise
        print("condsynth: error: out of memory (try smaller inputs, batches or networks)", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"condsynth: training stopped: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("condsynth: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

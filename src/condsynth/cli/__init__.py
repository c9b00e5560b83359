"""The ``condsynth`` command. Each verb is one module here with ``add_parser(subparsers)``
that registers its arguments and sets ``func=run`` (``run(args) -> int``)."""

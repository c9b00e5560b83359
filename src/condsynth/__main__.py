from condsynth.cli.main import main

raise SystemExit(main())

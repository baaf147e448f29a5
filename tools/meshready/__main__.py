from meshready.cli import main

raise SystemExit(main())

from pluralrm.cli import main

raise SystemExit(main())

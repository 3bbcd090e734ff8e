"""`python -m r1chat`."""

from r1chat.cli.main import main

raise SystemExit(main())

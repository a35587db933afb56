"""`python -m actors` starts the server, like the `shardis-server` script."""

import sys

from actors.server import main

sys.exit(main())

import sys

from liveness.cli import main

sys.exit(main())

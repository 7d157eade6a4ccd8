import sys

from refcr.cli import main

sys.exit(main())

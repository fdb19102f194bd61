import sys

from arqon.cli import main

sys.exit(main())

import sys

from lorebase.cli.main import main

sys.exit(main())

import sys

from dmrules.cli import main

sys.exit(main())

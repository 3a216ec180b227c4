"""python -m vicireg_lint PATH...: the same as the carrier-lint command."""
import sys

from vicireg_lint.cli import main

sys.exit(main())

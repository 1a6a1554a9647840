"""`python -m ops.cli ...`: how the service and the tests start `lde` without the console script."""

import sys

from ops.cli import main

if __name__ == "__main__":
    sys.exit(main())

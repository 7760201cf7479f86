"""``python -m diffseg30k`` (also ``accelerate launch -m diffseg30k ...``)."""

import sys

from diffseg30k.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m answerkit``: the ``answerkit`` command."""

import sys

from answerkit.cli import main

if __name__ == "__main__":  # a tool importing every module must not run the command
    sys.exit(main())

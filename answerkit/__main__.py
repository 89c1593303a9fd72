"""``python -m answerkit``: the ``answerkit`` command."""

import sys

from answerkit.cli import main

sys.exit(main())

"""``python -m convprop`` is the ``convprop`` command."""

import sys

from .cli import main

sys.exit(main())

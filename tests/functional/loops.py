"""The loop oracles of the kernel tests: a thin re-export of :mod:`convprop.reference`.

The references live in the package (one source, also used by explain mode); new tests import
``from convprop import reference as R``. This module keeps the remaining ``import loops`` /
``from loops import ...`` of the kernel tests working.
"""

from convprop.reference import *  # noqa: F401,F403
from convprop.reference import __all__  # noqa: F401

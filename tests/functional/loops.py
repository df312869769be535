"""The loop oracles of the kernel tests: a thin re-export of :mod:`convprop.reference`.

The references live in the package (one source, also used by explain mode); this module keeps
every ``import loops`` / ``from loops import ...`` of the kernel tests working.
"""

from convprop.reference import *  # noqa: F401,F403
from convprop.reference import __all__  # noqa: F401
from convprop.reference._grid import zero_pad as _zero_pad  # noqa: F401
from convprop.reference.pooling import beats as _beats  # noqa: F401

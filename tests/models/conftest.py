import os
import sys

# the repository root, for `from twins import torch_zoo` (the verified PyTorch twins of the zoo,
# shared with the benchmarks; not part of the installed convprop package)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

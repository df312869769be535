import os
import sys

# the repository root, for `from benchmarks import torch_zoo` (the verified PyTorch zoo)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

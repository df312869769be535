"""Independent PyTorch twins of convprop's model zoo, shared by the tests and the benchmarks.

``twins.torch_zoo`` rewrites every ``convprop.models`` architecture in PyTorch (importing
nothing from convprop); ``tests/models/test_zoo_parity.py`` verifies it against convprop, and
``python -m benchmarks`` and ``benchmarks.train_torch`` build their PyTorch models from it.
It is not part of the installed ``convprop`` package: import it with the repository root on
``sys.path`` (as ``python -m benchmarks`` and the tests' conftest do). Importing this package
does not import torch; ``twins.torch_zoo`` does.
"""

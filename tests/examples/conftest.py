import sys
from pathlib import Path

# the example scripts are plain files, not a package: make them importable by name
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

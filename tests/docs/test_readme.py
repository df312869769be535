"""The README's main example must run as written (docs that match the code)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = blocks[0]
    assert "fit(" in example and len(example.strip().splitlines()) <= 22
    exec(compile(example, str(README), "exec"), {})
    out = capsys.readouterr().out
    acc = float(out.strip().splitlines()[-1].split()[-1])
    assert acc > 0.85  # one epoch on 10,000 images (PyTorch, same net: 0.91); chance is 0.1


def test_readme_commands_match_the_ci_script():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert "convprop train" in text
    assert "python -m pytest" in text and "python -m pytest" in ci

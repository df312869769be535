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


def test_readme_training_step_makes_the_calls_fit_makes():
    """The spelled-out step and fit's inner loop: the same calls, in the same order, and the
    backward line character for character (loss.backward(1.0, ...), need_dx=False)."""
    import inspect

    from convprop.train import loop

    step = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
                if "model.backward(" in b and "fit(" not in b)
    lines = [code for line in step.splitlines() if (code := line.split("#")[0].strip())]
    backward = next(line for line in lines if line.startswith("model.backward("))
    assert "need_dx=False" in backward and "loss.backward(1.0, loss_cache)" in backward
    calls = ["model.forward(", "loss.forward(", "optimizer.zero_grad()", backward,
             "optimizer.step()"]
    assert [next(c for c in calls if c in line) for line in lines] == calls
    body = inspect.getsource(loop.fit).split("model.forward(", 1)  # past the docstring
    assert len(body) == 2, "fit does not call model.forward"
    rest = "model.forward(" + body[1]
    for c in calls:  # each call found after the previous one
        assert c in rest, f"fit does not make the README's call {c!r} in this order"
        rest = rest[rest.index(c) + len(c):]

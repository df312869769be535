"""The worked examples reproduce their digits; the text shows every part of the step."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convprop.explain.worked import EXAMPLES, format_array, render_text, worked_example


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def example(request):
    return request.param, worked_example(request.param)


def test_every_published_digit_is_reproduced(example):
    name, tr = example
    assert len(tr.checks) >= 8
    bad = [c for c in tr.checks if not c["agrees"]]
    assert not bad, bad


def test_mazur_in_full():
    tr = worked_example("mazur")
    assert tr.loss == pytest.approx(0.298371109, abs=5e-10)
    # the update leaves the biases, and takes the gradient step (not the post's shortcut)
    assert set(tr.steps[0].updated) == {"weight"} and set(tr.steps[2].updated) == {"weight"}
    assert tr.loss_after == pytest.approx(0.291027774, abs=5e-10)
    np.testing.assert_allclose(tr.steps[2].updated["weight"],
                               [[0.35891648, 0.408666186], [0.511301270, 0.561370121]],
                               atol=5e-9)


def test_a_check_can_fail():
    tr = worked_example("mazur")
    from convprop.explain.worked import _agrees
    assert _agrees(0.2983711094, "0.298371109")
    assert not _agrees(0.2983711096, "0.298371109")
    assert not _agrees(tr.loss_after, "0.291027924")   # the post's shortcut figure


def test_cnn4x4_switches_and_accumulated_delta():
    tr = worked_example("cnn4x4")
    pool = tr.steps[2]
    sw = [tuple(int(v) for v in pool.pushed["switches"][0, 0, i, j])
          for i in range(2) for j in range(2)]
    assert sw == [(0, 1), (0, 1), (1, 0), (2, 2)]
    np.testing.assert_allclose(pool.dx[0, 0, 0, 1], pool.delta[0, 0, 0, 0]
                               + pool.delta[0, 0, 0, 1], rtol=1e-14)
    assert np.count_nonzero(pool.dx) == 3
    assert all(w["agrees"] for s in tr.steps if s.windows for w in s.windows)


def test_text_shows_forward_cache_backward_update(example):
    name, tr = example
    text = render_text(tr)
    for needle in ("Forward pass", "pushes", "Loss", "Backward pass", "pops", "δ",
                   "Update: w <- w - lr dE/dw, lr = 0.5", "E after the update", "✓"):
        assert needle in text, needle
    assert "✗" not in text
    # the cnn4x4 digits are derived by hand, not published: the column says "expected"
    assert not re.search(r"published -?\d", text) and "expected 0.3" in text
    if name == "mazur":
        assert "E = 1/2 Σ (t - o)² = 0.298371109" in text
        assert "(not updated: 0.bias, 2.bias)" in text
    else:
        assert "window (0, 1) of channel 0 -> (0, 1)" in text
        assert "z1[0, 1, 1] = Σ W ⊙ x[1:3, 1:3] + b = 0.1·1 + -0.2·3 + 0.3·1 + 0.4·0 + 0.1" \
            in text
        assert "mask 1[z1 > 0]" in text


def test_long_tensors_are_summarised_never_dumped():
    a = np.arange(1000.0).reshape(10, 100)
    s = format_array(a)
    assert s.startswith("shape (10, 100), norm") and "999" in s and len(s) < 160
    assert format_array(np.array([[1.5, -0.0]])) == "[1.500000000  0.000000000]"
    assert "of 20 ones" in format_array(np.ones(20, np.uint8))


def test_unknown_example():
    with pytest.raises(ValueError, match="worked_example: unknown example 'nope'; known: "
                                         r"\['cnn4x4', 'mazur'\]"):
        worked_example("nope")

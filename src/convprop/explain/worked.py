"""The worked examples of explain mode, and the text of any :class:`~.trace.Trace`.

``worked_example("mazur")``: Matt Mazur's "A Step by Step Backpropagation Example" (2015,
https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/): inputs 0.05, 0.10,
targets 0.01, 0.99, a 2-2-2 sigmoid network, E = 1/2 Σ (t - o)², learning rate 0.5, biases
not trained. Every quantity the post publishes is compared with the trace at the precision
it was published with. The post's "error after one update, 0.291027924" is the one figure not
reproduced: it comes from using the already-updated w5..w8 in the hidden deltas; the gradient
step the post describes (and the trace takes) gives 0.291027774 (see
examples/two_layer_sigmoid.py, which reproduces both).

``worked_example("cnn4x4")``: the seeds' small CNN, a 4x4 input, one 2x2 filter, ReLU, a
2x2 max pool with stride 1 (overlapping windows: one value wins two windows and collects both
gradients), a fully connected layer and sigmoid outputs, E = 1/2 Σ (t - o)², learning rate
0.5. No published set of numbers for such an example could be found (searched: worked CNN
backpropagation examples with a 4x4 input and a 2x2 filter), so this one is constructed
here; its digits are those of examples/small_cnn.py, where every one is derived by hand.
"""

from __future__ import annotations

import numpy as np

from ..layers.activation import ReLU, Sigmoid
from ..layers.container import Sequential
from ..layers.conv import Conv2d
from ..layers.linear import Linear
from ..layers.loss import MSELoss
from ..layers.pooling import MaxPool2d
from ..layers.reshape import Flatten
from .trace import FULL, Trace, trace

__all__ = ["EXAMPLES", "format_array", "render_text", "worked_example"]


def _mazur():
    rng = np.random.default_rng(0)  # only for the layers' initial draw, overwritten below
    net = Sequential(Linear(2, 2, rng=rng, dtype=np.float64), Sigmoid(),
                     Linear(2, 2, rng=rng, dtype=np.float64), Sigmoid())
    net[0].weight.value = np.array([[0.15, 0.20], [0.25, 0.30]])   # w1 w2 / w3 w4
    net[0].bias.value = np.array([0.35, 0.35])
    net[2].weight.value = np.array([[0.40, 0.45], [0.50, 0.55]])   # w5 w6 / w7 w8
    net[2].bias.value = np.array([0.60, 0.60])
    x, t = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    s = lambda tr, i: tr.steps[i]  # noqa: E731
    published = [  # (label, digits, value in the trace)
        ("net_h1 = z1[0]", "0.3775", lambda tr: s(tr, 0).y[0, 0]),
        ("out_h1 = a1[0]", "0.593269992", lambda tr: s(tr, 1).y[0, 0]),
        ("out_h2 = a1[1]", "0.596884378", lambda tr: s(tr, 1).y[0, 1]),
        ("out_o1 = a2[0]", "0.75136507", lambda tr: s(tr, 3).y[0, 0]),
        ("out_o2 = a2[1]", "0.772928465", lambda tr: s(tr, 3).y[0, 1]),
        ("E_total", "0.298371109", lambda tr: tr.loss),
        ("δo1 = dE/dz2[0]", "0.138498562", lambda tr: s(tr, 2).delta[0, 0]),
        ("dE/dw5", "0.082167041", lambda tr: s(tr, 2).grads["weight"][0, 0]),
        ("dE/dout_h1 = dE/da1[0]", "0.036350306", lambda tr: s(tr, 1).delta[0, 0]),
        ("dE/dw1", "0.000438568", lambda tr: s(tr, 0).grads["weight"][0, 0]),
        *[(f"w{k + 5}+", v, lambda tr, k=k: s(tr, 2).updated["weight"].flat[k])
          for k, v in enumerate(("0.35891648", "0.408666186", "0.511301270", "0.561370121"))],
        *[(f"w{k + 1}+", v, lambda tr, k=k: s(tr, 0).updated["weight"].flat[k])
          for k, v in enumerate(("0.149780716", "0.19956143", "0.24975114", "0.29950229"))],
    ]
    notes = ["Mazur's names: net_h = z1, out_h = a1, net_o = z2, out_o = a2; w1..w4 are W1 "
             "row by row, w5..w8 are W2 row by row; the biases b1 = 0.35, b2 = 0.60 are not "
             "trained.",
             "The post's 'error after one update, 0.291027924' uses the already-updated "
             "w5..w8 for the hidden deltas; the gradient step shown here gives the E after the "
             "update below (0.291027774)."]
    return dict(model=net, x=x, target=t, loss=MSELoss(reduction="half_sum"), lr=0.5,
                frozen=("0.bias", "2.bias"), published=published, notes=notes,
                source="Published digits (Mazur 2015), each at the precision it was printed "
                       "with",
                title="Matt Mazur, 'A Step by Step Backpropagation Example' (2015): "
                      "2-2-2 sigmoid network, one step")


def _cnn4x4():
    rng = np.random.default_rng(0)
    net = Sequential(Conv2d(1, 1, 2, rng=rng, dtype=np.float64), ReLU(),
                     MaxPool2d(2, stride=1), Flatten(),
                     Linear(4, 2, rng=rng, dtype=np.float64), Sigmoid())
    net[0].weight.value = np.array([[[[0.1, -0.2], [0.3, 0.4]]]])
    net[0].bias.value = np.array([0.1])
    net[4].weight.value = np.array([[0.1, 0.2, -0.1, 0.3], [-0.2, 0.1, 0.4, 0.2]])
    net[4].bias.value = np.array([0.05, -0.05])
    x = np.array([[1, 2, 0, 1], [0, 1, 3, 1], [2, 1, 0, 2], [1, 0, 1, 3]],
                 dtype=np.float64).reshape(1, 1, 4, 4)
    s = lambda tr, i: tr.steps[i]  # noqa: E731
    published = [
        ("E", "0.319306864", lambda tr: tr.loss),
        ("dE/da1[0, 1] (two windows' sum)", "0.053045155",
         lambda tr: s(tr, 2).dx[0, 0, 0, 1]),
        *[(f"dE/dW1[{i}, {j}]", v, lambda tr, i=i, j=j: s(tr, 0).grads["weight"][0, 0, i, j])
          for (i, j), v in np.ndenumerate(np.array([["0.106090309", "-0.004682918"],
                                                    ["-0.028784741", "0.178607232"]]))],
        ("dE/db1", "0.024207550", lambda tr: s(tr, 0).grads["bias"][0]),
        ("E after the update", "0.183121285", lambda tr: tr.loss_after),
    ]
    notes = ["A constructed example (no published CNN example with these numbers was found); "
             "its digits are derived by hand in examples/small_cnn.py.",
             "The pooling windows overlap (stride 1 < kernel 2): a1[0, 1] = 1.8 wins windows "
             "(0, 0) and (0, 1), and its delta is the sum of both windows' deltas."]
    return dict(model=net, x=x, target=np.array([[0.01, 0.99]]),
                loss=MSELoss(reduction="half_sum"), lr=0.5, frozen=(), published=published,
                notes=notes, source="Digits derived by hand (examples/small_cnn.py)",
                title="4x4 input, 2x2 filter, ReLU, 2x2 max pool (stride 1), fully "
                      "connected, sigmoid: one step")


EXAMPLES = {"mazur": _mazur, "cnn4x4": _cnn4x4}


def _agrees(value: float, digits: str) -> bool:
    """``value`` rounds to ``digits`` at the precision they were published with."""
    decimals = len(digits.split(".")[1])
    return abs(float(value) - float(digits)) < 0.5 * 10.0 ** -decimals


def worked_example(name: str) -> Trace:
    """The trace of a named worked example, its published digits compared in ``checks``
    (dicts: label, published, computed, agrees)."""
    if name not in EXAMPLES:
        raise ValueError(f"worked_example: unknown example {name!r}; known: "
                         f"{sorted(EXAMPLES)}")
    ex = EXAMPLES[name]()
    tr = trace(ex["model"], ex["x"], ex["target"], loss=ex["loss"], lr=ex["lr"],
               frozen=ex["frozen"])
    tr.title, tr.checks_source = ex["title"], ex["source"]
    tr.notes = list(ex["notes"]) + tr.notes
    tr.checks = [{"label": label, "published": digits, "computed": float(get(tr)),
                  "agrees": _agrees(get(tr), digits)} for label, digits, get in ex["published"]]
    return tr


# ----------------------------------------------------------------------------- text

def format_array(a, full: int = FULL, indent: str = "      ") -> str:
    """A short array in full (leading axes of size 1 dropped, 9 decimals), a long one as
    shape, norm, range and its first entries."""
    a = np.asarray(a)
    if a.size > full:
        f = a.astype(np.float64).ravel() + 0.0
        if a.dtype.kind in "ub":  # a mask
            return (f"shape {a.shape}, {int(np.count_nonzero(f))} of {f.size} ones, first "
                    f"[{', '.join(str(int(v)) for v in f[:8])}, ...]")
        return (f"shape {a.shape}, norm {np.linalg.norm(f):.6g}, min {f.min():.6g}, "
                f"max {f.max():.6g}, first [{', '.join(f'{v:.6g}' for v in f[:4])}, ...]")
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.dtype.kind in "iub":
        cell = "{:d}".format
        a = a.astype(np.int64)
    else:
        cell = lambda v: f"{v + 0.0:.9f}"  # noqa: E731  (+ 0.0: no -0.0)
    if a.ndim <= 1:
        return "[" + "  ".join(cell(v) for v in np.atleast_1d(a)) + "]"
    if a.ndim == 2:
        rows = ["[" + "  ".join(cell(v) for v in r) + "]" for r in a]
        return rows[0] if len(rows) == 1 else "\n" + "\n".join(indent + r for r in rows)
    return "\n" + "\n".join(f"{indent}[{i}]: {format_array(a[i], full, indent + '  ')}"
                            for i in range(a.shape[0]))


def _param_symbol(step, k: str) -> str:
    level = step.symbol_out[1:] if step.symbol_out.startswith("z") else ""
    return {"weight": f"W{level}", "bias": f"b{level}"}.get(k, k) if level else k


def _outline(c) -> str:
    """A nested cache by its types: [[ConvCache, ReluCache], None]."""
    if isinstance(c, dict):
        return c.get("type", "?")
    if isinstance(c, (list, tuple)):
        return "[" + ", ".join(_outline(v) for v in c) + "]"
    return "None" if c is None else type(c).__name__


def _pushed(step) -> list:
    p, out = step.pushed, []
    if "switches" in p:
        sw = p["switches"]
        out.append(f"    pushes {step.cache_type}: the switches (window -> winner in "
                   f"{step.symbol_in})")
        if sw[0].size // sw.shape[-1] <= 2 * FULL:
            for idx in np.ndindex(*sw.shape[1:-1]):
                out.append(f"      window {idx[1:]} of channel {idx[0]} -> "
                           f"{tuple(int(v) for v in sw[(0, *idx)])}")
        else:
            out.append(f"      {sw.shape[:-1]} switches, e.g. window (0, 0) of channel 0 -> "
                       f"{tuple(int(v) for v in sw[(0, 0) + (0,) * (sw.ndim - 3)])}")
    elif "mask" in p:
        what = "1[" + step.symbol_in + " > 0]" if "Relu" in step.cache_type else "m"
        out.append(f"    pushes {step.cache_type}: mask {what} = {format_array(p['mask'])}")
    elif isinstance(p["cache"], (list, tuple)):
        out.append(f"    pushes its children's caches: {_outline(p['cache'])}")
    else:
        fields = {k: v for k, v in p["cache"].items() if k != "type"} if isinstance(
            p["cache"], dict) else {}
        parts = [f"{k} {v.shape}" if isinstance(v, np.ndarray) else
                 f"{k}={v}" if not isinstance(v, (dict, list)) else k
                 for k, v in fields.items()]
        out.append(f"    pushes {step.cache_type}" + (": " + ", ".join(parts) if parts else ""))
    return out


def _windows(step) -> list:
    if not step.windows:
        return []
    out = ["    its windows one by one (loop tier, convprop.reference; ✓ = the fast kernel "
           "agrees):"]
    for w in step.windows:
        ok = "✓" if w["agrees"] else "✗ DIFFERS"
        if "patch" in w:
            o, i, j = w["out"]
            terms = ""
            if w["patch"].size <= 9 and w["weights"] is not None:
                terms = " = " + " + ".join(f"{a + 0.0:g}·{v + 0.0:g}" for a, v in zip(
                    w["weights"].ravel(), w["patch"].ravel())) + f" + {w['bias'] + 0.0:g}"
            out.append(f"      {step.symbol_out}[{o}, {i}, {j}] = Σ W ⊙ {step.symbol_in}"
                       f"[{w['rows'][0]}:{w['rows'][1]}, {w['cols'][0]}:{w['cols'][1]}] + b"
                       f"{terms} = {w['value']:.9f} {ok}")
        else:
            c, *o = w["out"]
            vals = ", ".join(f"{v + 0.0:g}" for v in w["values"])
            extra = f", winner {tuple(w['switch'])}" if "switch" in w else ""
            out.append(f"      window {tuple(o)} of channel {c}: ({vals}) -> "
                       f"{w['value']:.9f}{extra} {ok}")
    return out


def render_text(tr: Trace) -> str:
    """The trace as the textbook writes it: forward (push), loss, backward (pop), update."""
    L = [tr.title or "One training step, layer by layer", "",
         "model:", *("  " + line for line in tr.model.splitlines()),
         f"input x: {format_array(tr.x)}", f"target t: {format_array(tr.target)}",
         f"loss: {tr.loss_equation}   ({tr.loss_name})", "",
         "Forward pass: each layer computes its output and pushes its cache on the stack"]
    for st in tr.steps:
        L += [f"[{st.index}] {st.name}: {st.kind}", f"    {st.equation}",
              f"    {st.symbol_out} = {format_array(st.y)}", *_pushed(st), *_windows(st)]
    L += ["", "Loss", f"    o = {format_array(tr.prediction)}",
          f"    {tr.loss_equation} = {tr.loss:.9f}",
          f"    dE/do = {format_array(tr.dprediction)}", "",
          "Backward pass: each layer pops its cache and turns δ = dE/d(output) into "
          "dE/d(input)"]
    for st in reversed(tr.steps):
        L += [f"[{st.index}] {st.name}: {st.kind} pops {st.cache_type}",
              f"    δ{st.symbol_out} = dE/d{st.symbol_out} = {format_array(st.delta)}"]
        for k, g in st.grads.items():
            L.append(f"    dE/d{_param_symbol(st, k)} = {format_array(g)}")
        if st.dx is not None:
            L.append(f"    dE/d{st.symbol_in} = {format_array(st.dx)}")
    frozen = f" (not updated: {', '.join(tr.frozen)})" if tr.frozen else ""
    L += ["", f"Update: w <- w - lr dE/dw, lr = {tr.lr:g}{frozen}"]
    for st in tr.steps:
        for k, new in st.updated.items():
            L.append(f"    {st.name}.{k} = {_param_symbol(st, k)}: {format_array(new)}")
    L.append(f"E after the update = {tr.loss_after:.9f}")
    if tr.checks:
        L += ["", tr.checks_source or "Published digits"]
        width = max(len(c["label"]) for c in tr.checks)
        for c in tr.checks:
            L.append(f"    {c['label']:<{width}}  expected {c['published']:<13} computed "
                     f"{c['computed']:.9f}  {'✓' if c['agrees'] else '✗ DIFFERS'}")
    if tr.notes:
        L += ["", "Notes", *("    " + n for n in tr.notes)]
    return "\n".join(line.rstrip() for line in "\n".join(L).splitlines())

"""A tiny CNN, one backpropagation step worked out in full, overlapping max pooling included.

One 4x4 single-channel image goes through

    Conv2d(1 -> 1, 2x2, stride 1, no padding)  ->  ReLU  ->  MaxPool2d(2x2, stride 1)
    ->  Flatten  ->  Linear(4 -> 2)  ->  Sigmoid,   E = 1/2 sum (t - o)^2, t = (0.01, 0.99)

and every parameter takes one gradient-descent step with learning rate 0.5.

The one thing to watch: the pooling windows overlap (stride 1 < kernel 2), so one ReLU output
can win several windows. Max pooling routes each window's gradient to its winner (the
"switch"), and a winner of two windows receives the *sum* of both gradients. Here the value
1.8 at row 0, column 1 wins two windows and collects 0.053045155.

    python examples/small_cnn.py
"""

from __future__ import annotations

import numpy as np

from convprop.layers import (Conv2d, Flatten, Linear, MaxPool2d, MSELoss, ReLU, Sequential,
                             Sigmoid)

IMAGE = np.array([[1, 2, 0, 1],
                  [0, 1, 3, 1],
                  [2, 1, 0, 2],
                  [1, 0, 1, 3]], dtype=np.float64).reshape(1, 1, 4, 4)  # N, C, H, W
CONV_W = np.array([[0.1, -0.2],
                   [0.3, 0.4]]).reshape(1, 1, 2, 2)
CONV_B = np.array([0.1])
FC_W = np.array([[0.1, 0.2, -0.1, 0.3],
                 [-0.2, 0.1, 0.4, 0.2]])
FC_B = np.array([0.05, -0.05])
TARGETS = np.array([[0.01, 0.99]])
LEARNING_RATE = 0.5


def build_network() -> Sequential:
    """The network with the example's weights, in float64."""
    rng = np.random.default_rng(0)  # only for the layers' initial draw, overwritten below
    net = Sequential(Conv2d(1, 1, 2, rng=rng, dtype=np.float64), ReLU(),
                     MaxPool2d(2, stride=1), Flatten(),
                     Linear(4, 2, rng=rng, dtype=np.float64), Sigmoid())
    conv, _, _, _, fc, _ = net.children()
    conv.weight.value, conv.bias.value = CONV_W.copy(), CONV_B.copy()
    fc.weight.value, fc.bias.value = FC_W.copy(), FC_B.copy()
    net.zero_grad()
    return net


def loss(net: Sequential) -> float:
    """E = 1/2 sum (t - o)^2 for the network's current parameters."""
    return float(MSELoss(reduction="half_sum").forward(net.predict(IMAGE), TARGETS)[0])


def pooling_switches(pool: MaxPool2d, cache, out_shape) -> dict:
    """Which input position won each pooling window: send a gradient of 1 into one output
    position at a time and see where backward delivers it."""
    switches = {}
    for i, j in np.ndindex(*out_shape[2:]):
        probe = np.zeros(out_shape)
        probe[0, 0, i, j] = 1.0
        routed = pool.backward(probe, cache)[0, 0]
        switches[(i, j)] = tuple(int(k) for k in np.argwhere(routed == 1.0)[0])
    return switches


def worked_example() -> dict:
    """Forward, backward and one SGD step; every intermediate quantity by name."""
    net = build_network()
    conv, relu, pool, flat, fc, sig = net.children()
    loss_fn = MSELoss(reduction="half_sum")
    q = {}
    # forward, keeping each layer's cache
    z, c_conv = conv.forward(IMAGE, training=True)
    r, c_relu = relu.forward(z, training=True)
    p, c_pool = pool.forward(r, training=True)
    f, c_flat = flat.forward(p, training=True)
    a, c_fc = fc.forward(f, training=True)
    o, c_sig = sig.forward(a, training=True)
    E, c_loss = loss_fn.forward(o, TARGETS)
    q.update(conv=z[0, 0], relu=r[0, 0], pool=p[0, 0], logits=a[0], out=o[0], E=float(E))
    q["switches"] = pooling_switches(pool, c_pool, p.shape)
    # backward: each layer turns dE/d(its output) into dE/d(its input), adding parameter grads
    net.zero_grad()
    d_o = loss_fn.backward(np.float64(1.0), c_loss)
    d_a = sig.backward(d_o, c_sig)
    d_f = fc.backward(d_a, c_fc)
    d_p = flat.backward(d_f, c_flat)
    d_r = pool.backward(d_p, c_pool)
    d_z = relu.backward(d_r, c_relu)
    conv.backward(d_z, c_conv)
    q.update(dE_do=d_o[0], dE_dlogits=d_a[0], dE_dpool=d_p[0, 0], dE_drelu=d_r[0, 0],
             dE_dconv=d_z[0, 0], dW_fc=fc.weight.grad.copy(), db_fc=fc.bias.grad.copy(),
             dw=conv.weight.grad[0, 0].copy(), db=float(conv.bias.grad[0]))
    # one SGD step on every parameter
    for prm in net.parameters():
        prm.value = prm.value - LEARNING_RATE * prm.grad
    net.zero_grad()
    q.update(w_new=conv.weight.value[0, 0].copy(), b_new=float(conv.bias.value[0]),
             E_after_one_step=loss(net))
    return q


def _matrix(a, indent="    ") -> str:
    rows = np.atleast_2d(a) + 0.0  # + 0.0 prints a -0.0 from the ReLU as 0.0
    return "\n".join(indent + "  ".join(f"{v:12.9f}" for v in row) for row in rows)


def report() -> str:
    """The worked example as text."""
    q = worked_example()
    L = ["Small CNN: Conv2d 2x2 -> ReLU -> MaxPool2d 2x2 stride 1 -> Flatten -> Linear -> "
         "Sigmoid", "", "Forward pass",
         "  image x:", _matrix(IMAGE[0, 0]),
         "  conv z = x ⋆ w + b (cross-correlation, 2x2 window):", _matrix(q["conv"]),
         "  relu r = max(z, 0):", _matrix(q["relu"]),
         "  max pool p (2x2 windows, stride 1: neighbouring windows overlap):",
         _matrix(q["pool"]), "  pooling switches (window -> winning position in r):"]
    for (i, j), (a, b) in q["switches"].items():
        L.append(f"    window ({i}, {j}) -> r[{a}, {b}] = {q['relu'][a, b]:.1f}")
    L += [f"  logits = W2 flatten(p) + b2 = {_matrix(q['logits'], '')}",
          f"  o = sigmoid(logits)         = {_matrix(q['out'], '')}",
          f"  E = 1/2 sum (t - o)^2       = {q['E']:.9f}",
          "", "Backward pass",
          f"  dE/do = o - t                   = {_matrix(q['dE_do'], '')}",
          f"  dE/dlogits = dE/do * o (1 - o)  = {_matrix(q['dE_dlogits'], '')}",
          "  dE/dW2 (outer product with flatten(p)):", _matrix(q["dW_fc"]),
          f"  dE/db2 = {_matrix(q['db_fc'], '')}",
          "  dE/dp = W2^T dE/dlogits, reshaped 2x2:", _matrix(q["dE_dpool"]),
          "  dE/dr: each window's gradient goes to its switch, summed where windows share one:",
          _matrix(q["dE_drelu"])]
    shared = {}
    for win, pos in q["switches"].items():
        shared.setdefault(pos, []).append(win)
    for pos, wins in shared.items():
        if len(wins) > 1:
            parts = " + ".join(f"{q['dE_dpool'][w]:.9f}" for w in wins)
            L.append(f"    r{list(pos)} wins windows {wins}: {parts} = "
                     f"{q['dE_drelu'][pos]:.9f}")
    L += ["  dE/dz = dE/dr where z > 0 (ReLU gate):", _matrix(q["dE_dconv"]),
          "  dE/dw = sum over positions of dE/dz * the 2x2 patch of x under w:",
          _matrix(q["dw"]),
          f"  dE/db = sum of dE/dz = {q['db']:.9f}",
          "", f"One SGD step on every parameter (learning rate {LEARNING_RATE})",
          "  w after the step:", _matrix(q["w_new"]),
          f"  b after the step = {q['b_new']:.9f}",
          f"  E after one step = {q['E_after_one_step']:.9f}"]
    return "\n".join(L)


def main(argv=None) -> None:
    print(report())


if __name__ == "__main__":
    main()

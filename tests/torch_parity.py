"""Module parity with torch.nn in float64: the weights copied in, forward, the input gradient
and every parameter gradient compared (used by the layer tests of every dimension)."""

import numpy as np

ATOL = 1e-10


def to_torch(torch, module, tmod):
    """Copy the convprop state (PyTorch's names) into a float64 torch module."""
    tmod.double()
    tmod.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                          module.state_dict().items()})
    return tmod


def parity_step(torch, module, tmod, x, training, rng):
    """One forward/backward on both with a random dy; compare y and dx."""
    tmod.train(training)
    y, cache = module.forward(x, training=training)
    xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    yt = tmod(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=ATOL)
    dy = rng.standard_normal(y.shape)
    dx = module.backward(dy, cache)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=ATOL)


def assert_parity(torch, module, tmod, x, *, training=True, steps=1, rng=None):
    """Run ``steps`` forward/backward pairs on both; compare y, dx and every parameter
    gradient (accumulated over the steps, as both frameworks accumulate)."""
    rng = np.random.default_rng(0) if rng is None else rng
    module.astype(np.float64)
    to_torch(torch, module, tmod)
    for _ in range(steps):
        parity_step(torch, module, tmod, x, training, rng)
    tparams = dict(tmod.named_parameters())
    assert set(tparams) == {n for n, _ in module.named_parameters()}
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=0, atol=ATOL,
                                   err_msg=name)
    tstate = tmod.state_dict()
    for name, v in module.state_dict().items():
        np.testing.assert_allclose(v, tstate[name].numpy(), rtol=0, atol=ATOL, err_msg=name)

import os
import signal
import subprocess
import sys

import numpy as np

from _tiny import data, setup
from convprop.io import load_checkpoint
from convprop.optim import StepLR
from convprop.train import fit

HERE = os.path.dirname(__file__)


def test_sigkill_during_epoch_2_then_resume_is_bit_identical(tmp_path):
    model, loss, opt, rng = setup(seed=11)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    fit(model, loss, opt, data(), epochs=2, batch_size=32, rng=rng, schedule=sched, verbose=0)
    straight = model.state_dict()

    path = tmp_path / "ck.safetensors"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, os.path.join(HERE, "_kill_child.py"), str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.strip() == "IN_EPOCH2", child.stderr.read()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    ck = load_checkpoint(path)  # the epoch-1 checkpoint is intact
    assert ck.epoch == 1
    model, loss, opt, rng = setup(seed=999)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    ck.restore(model, opt, sched, rng)
    fit(model, loss, opt, data(), epochs=2, batch_size=32, rng=rng, schedule=sched, verbose=0,
        initial_epoch=ck.epoch)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, straight[k], err_msg=k)

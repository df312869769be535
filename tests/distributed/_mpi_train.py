"""Run under ``mpiexec -n K``: the data-parallel twin of test_data_parallel's runs, over real
MPI. Writes rank r's final state to OUT/rank{r}.npz. ``--fail-rank R --fail-epoch E`` makes
rank R raise after epoch E (the job must stop, naming R); ``--kill-rank R`` makes it kill
itself with SIGKILL mid-epoch (the job must stop, not hang)."""

import argparse
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from test_data_parallel import _train  # noqa: E402

from convprop.distributed import MPIComm, world  # noqa: E402
from convprop.train import Callback  # noqa: E402


class Fault(Callback):
    def __init__(self, comm, a):
        self.comm, self.a = comm, a

    def on_batch_end(self, state, batch):
        if self.comm.rank == self.a.kill_rank and state.epoch == 2 and batch.step == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_end(self, state, logs):
        if self.comm.rank == self.a.fail_rank and logs["epoch"] == self.a.fail_epoch:
            raise ValueError("an injected failure")


p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--bn", action="store_true")
p.add_argument("--opt", default="adam")
p.add_argument("--fail-rank", type=int, default=-1)
p.add_argument("--fail-epoch", type=int, default=2)
p.add_argument("--kill-rank", type=int, default=-1)
a = p.parse_args()
comm = world()
assert isinstance(comm, MPIComm), comm
model, h = _train(comm, bn=a.bn, opt=a.opt, callbacks=[Fault(comm, a)])
np.savez(os.path.join(a.out, f"rank{comm.rank}.npz"), **model.state_dict(),
         history_loss=np.array(h["loss"]), history_acc=np.array(h["accuracy"]))

"""Child process for the SIGKILL test: trains, checkpoints after epoch 1, then stalls
mid-way through epoch 2 (announcing it) so the parent can kill it there."""

import sys
import time

from _tiny import data, setup
from convprop.optim import StepLR
from convprop.train import Callback, SaveCheckpoint, fit

path = sys.argv[1]
model, loss, opt, rng = setup(seed=11)
sched = StepLR(opt, step_size=1, gamma=0.5)
state = {"epoch1_done": False, "batches": 0}


class Mark(Callback):
    def on_epoch_end(self, st, logs):
        state["epoch1_done"] = True


def stall_in_epoch2(xb, rng):  # leaves the batch and the generator untouched
    if state["epoch1_done"]:
        state["batches"] += 1
        if state["batches"] == 3:
            print("IN_EPOCH2", flush=True)
            time.sleep(120)
    return xb


fit(model, loss, opt, data(), epochs=2, batch_size=32, rng=rng, schedule=sched, verbose=0,
    callbacks=[SaveCheckpoint(path), Mark()], augment=stall_in_epoch2)

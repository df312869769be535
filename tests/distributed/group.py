"""An in-process stand-in for an MPI group: K ranks as K threads, whose collectives meet at a
barrier. The math of data-parallel training and synchronized batch norm is tested with it on
any machine; the real MPI runs (test_mpi.py) check the same under mpiexec."""

from __future__ import annotations

import threading

import numpy as np

from convprop.distributed import Comm


class ThreadGroup:
    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots = [None] * size

    def comms(self):
        return [ThreadComm(self, r) for r in range(self.size)]

    def run(self, fn):
        """Run ``fn(comm)`` on every rank in its own thread; return the results by rank."""
        out, errors = [None] * self.size, []

        def work(c):
            try:
                out[c.rank] = fn(c)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                self.barrier.abort()

        threads = [threading.Thread(target=work, args=(c,)) for c in self.comms()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out


class ThreadComm(Comm):
    def __init__(self, group: ThreadGroup, rank: int):
        self.group, self.rank, self.size = group, rank, group.size

    def _exchange(self, value):
        g = self.group
        g.slots[self.rank] = value
        g.barrier.wait()
        values = list(g.slots)
        g.barrier.wait()
        return values

    def allreduce_(self, a):
        values = self._exchange(a.copy())
        total = values[0].copy()
        for v in values[1:]:  # rank order, as a deterministic MPI reduction would
            total += v
        a[...] = total
        return a

    def allgather(self, obj):
        return self._exchange(obj)

    def bcast_(self, a):
        a[...] = self._exchange(a.copy())[0]
        return a

    def barrier(self):
        self.group.barrier.wait()


def shards(n, size):
    return [slice(r * n // size, (r + 1) * n // size) for r in range(size)]


__all__ = ["ThreadComm", "ThreadGroup", "np", "shards"]

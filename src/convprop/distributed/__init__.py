"""Data-parallel training over MPI (the optional ``mpi`` extra: mpi4py with the mpich wheel).

``mpiexec -n K convprop train ...`` trains on K processes with no other change; from Python,
pass :class:`DataParallel` to :func:`~convprop.train.fit` on every rank. See the README's
"Training on several processes" for launching across machines and the expected scaling.
"""

from .comm import Comm, MPIComm, SingleProcess, launched_size, world
from .data_parallel import DataParallel, OutOfSyncError, state_checksum
from .sync_batchnorm import SyncBatchNorm, SyncBatchNormCache

__all__ = ["Comm", "DataParallel", "MPIComm", "OutOfSyncError", "SingleProcess",
           "SyncBatchNorm", "SyncBatchNormCache", "launched_size", "state_checksum", "world"]

"""The process group of data-parallel training: rank, size and the few collectives it needs,
over MPI (mpi4py's ``COMM_WORLD``), or the trivial group of one process.

:func:`world` decides which: a process started by ``mpiexec``/``mpirun``/``srun`` with more
than one rank (the launchers' environment variables say so) gets MPI, and a clear error with
the install hint when mpi4py is missing; a plain process gets :class:`SingleProcess`, whose
collectives are the identity, so the same training code runs with or without MPI.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

__all__ = ["Comm", "MPIComm", "SingleProcess", "active", "launched_size", "world"]

#: Environment variables through which MPI launchers announce the job's size.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS",
              "MV2_COMM_WORLD_SIZE")  # not SLURM_NTASKS: set for a whole allocation
_world = None


class Comm:
    """What data parallelism asks of a process group. ``rank`` in ``[0, size)``;
    ``allreduce_(a)`` sums a float64/float32 array over the ranks in place and returns it;
    ``allgather(obj)`` a small JSON-able value from every rank, as a list; ``bcast_(a)``
    overwrites ``a`` with rank 0's; ``abort(message)`` ends every rank of the job.

    ``placeholder`` is True on a rank whose share of the current batch is empty and which
    runs a stand-in example instead (weight 0, see :class:`~convprop.distributed.
    DataParallel`); synchronized batch norm leaves such a rank's values out."""

    rank = 0
    size = 1
    placeholder = False

    def allreduce_(self, a: np.ndarray) -> np.ndarray:
        return a

    def allgather(self, obj) -> list:
        return [obj]

    def bcast_(self, a: np.ndarray) -> np.ndarray:
        return a

    def barrier(self) -> None:
        pass

    def abort(self, message: str, code: int = 1):
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(code)


class SingleProcess(Comm):
    """The group of one process: every collective is the identity."""

    def __repr__(self) -> str:
        return "SingleProcess()"


class MPIComm(Comm):
    """An mpi4py communicator (default ``MPI.COMM_WORLD``)."""

    def __init__(self, comm=None):
        from mpi4py import MPI
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()

    def allreduce_(self, a: np.ndarray) -> np.ndarray:
        if not (a.flags.c_contiguous and a.flags.writeable):
            raise ValueError("allreduce_: the buffer must be a writeable C-contiguous array")
        self.comm.Allreduce(self._MPI.IN_PLACE, a, op=self._MPI.SUM)
        return a

    def allgather(self, obj) -> list:
        return self.comm.allgather(obj)

    def bcast_(self, a: np.ndarray) -> np.ndarray:
        self.comm.Bcast(a, root=0)
        return a

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, message: str, code: int = 1):
        if message:
            print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
        # the launcher forwards each rank's output asynchronously and tears the job down on
        # MPI_Abort: give it a moment to forward this line (it was lost about one run in 20)
        time.sleep(0.25)
        self.comm.Abort(code)

    def __repr__(self) -> str:
        return f"MPIComm(rank={self.rank}, size={self.size})"


def _abort_on_uncaught(comm: "MPIComm") -> None:
    """An uncaught exception on one rank would leave the others waiting in a collective
    forever: print it with the rank that raised it, then abort the whole job."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        message = (f"convprop: rank {comm.rank} of {comm.size} failed with {kind.__name__}: "
                   f"{value}; aborting the job (every rank stops)")
        print(message, file=sys.stderr, flush=True)  # first: the line that names the rank
        previous(kind, value, tb)
        comm.abort("")

    sys.excepthook = hook


def launched_size() -> int:
    """The number of ranks an MPI launcher announced for this process (1 when none did)."""
    for var in _SIZE_VARS:
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 1:
            return int(v)
    return 1


def active() -> Comm | None:
    """The group :func:`world` created in this process, or None when nothing asked yet
    (reporting an error must not be what starts MPI)."""
    return _world


def world() -> Comm:
    """This process's group: MPI's COMM_WORLD when launched on more than one rank, else
    :class:`SingleProcess`. Created once per process."""
    global _world
    if _world is None:
        if launched_size() > 1:
            try:
                import mpi4py  # noqa: F401
            except ImportError:
                raise ImportError(
                    "convprop.distributed: this process was started by an MPI launcher with "
                    f"{launched_size()} ranks but mpi4py is not installed: pip install "
                    "'convprop[mpi]'") from None
            _world = MPIComm()
            _abort_on_uncaught(_world)
        else:
            _world = SingleProcess()
    return _world

"""The communicator: MPI's world through mpi4py, or one local process without it.

graphnet keeps MPI behind this small class, so the rest of the package reads
as "allreduce this buffer" and the single-process case needs no MPI at all.
Every wait has a deadline (`timeout` seconds): a rank that stops answering
makes the others raise a DistributedError instead of hanging. Under more
than one rank an uncaught exception aborts the whole job (MPI_Abort), so a
rank that raises never leaves the others blocked in a collective.

Only buffer-based MPI calls are used (NumPy arrays, no pickled objects).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from graphnet.errors import GraphnetError

#: Seconds a rank waits for the others in any collective before it gives up.
DEFAULT_TIMEOUT = 300.0

#: Environment variables by which launchers (MPICH/Hydra, Open MPI, PMIx, Slurm)
#: announce the number of processes they started.
_LAUNCH_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


class DistributedError(GraphnetError, RuntimeError):
    """Ranks that disagree, data that cannot be sharded, or a rank that stopped answering.

    `collective` is True when every rank raises the same error at the same
    point (then nobody is left waiting, and the job ends without MPI_Abort).
    """

    def __init__(self, message: str, collective: bool = False):
        super().__init__(message)
        self.collective = collective


class _Done:
    """A request that has already completed (what a one-process job returns)."""

    def Test(self) -> bool:  # noqa: N802 - mpi4py's name
        return True


class Communicator:
    """Rank, size and the few collectives graphnet needs, with deadlines.

    `Communicator.world()` is MPI_COMM_WORLD when mpi4py is importable, else a
    one-process communicator; `Communicator.local()` is always the latter.
    """

    def __init__(self, mpi_comm=None, timeout: float = DEFAULT_TIMEOUT):
        self._comm = mpi_comm
        self.timeout = float(timeout)
        self.rank = 0 if mpi_comm is None else mpi_comm.Get_rank()
        self.size = 1 if mpi_comm is None else mpi_comm.Get_size()

    @classmethod
    def world(cls, timeout: float = DEFAULT_TIMEOUT) -> Communicator:
        """MPI_COMM_WORLD, or one local process when mpi4py is missing and no
        launcher started several processes (then a DistributedError says how
        to install it)."""
        try:
            from mpi4py import MPI
        except ImportError:
            launched = launched_size()
            if launched > 1:
                raise DistributedError(
                    f"this process is one of {launched} started by an MPI launcher, but "
                    "mpi4py is not installed: pip install 'graphnet[mpi]' (mpi4py and an MPI "
                    "library, e.g. mpich), then launch again") from None
            return cls(None, timeout)
        return cls(MPI.COMM_WORLD, timeout)

    @classmethod
    def local(cls) -> Communicator:
        """A communicator of one process (no MPI)."""
        return cls(None)

    @property
    def is_mpi(self) -> bool:
        return self._comm is not None

    def where(self) -> str:
        """`rank 1 of 4`, for messages."""
        return f"rank {self.rank} of {self.size}"

    # --------------------------------------------------------- collectives

    def iallreduce(self, buffer: np.ndarray):
        """Start summing `buffer` in place across ranks; returns a request for `wait`."""
        if self._comm is None or self.size == 1:
            return _Done()
        from mpi4py import MPI
        return self._comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    def allreduce(self, buffer: np.ndarray, what: str) -> np.ndarray:
        """Sum `buffer` in place across ranks (and return it)."""
        self.wait(self.iallreduce(buffer), what)
        return buffer

    def bcast(self, buffer: np.ndarray, what: str, root: int = 0) -> np.ndarray:
        """Overwrite `buffer` on every rank with root's (in place; returns it)."""
        if self._comm is not None and self.size > 1:
            self.wait(self._comm.Ibcast(buffer, root=root), what)
        return buffer

    def allgather(self, value: np.ndarray, what: str) -> np.ndarray:
        """(size, *value.shape): every rank's `value` (same shape and dtype on all)."""
        value = np.ascontiguousarray(value)
        out = np.empty((self.size,) + value.shape, value.dtype)
        if self._comm is None or self.size == 1:
            out[0] = value
            return out
        self.wait(self._comm.Iallgather(value, out), what)
        return out

    def wait(self, request, what: str):
        """Block until `request` completes, or raise a DistributedError after `timeout` s.

        Polls (MPI_Test) rather than blocking in MPI_Wait so that the deadline
        holds; polling also drives MPI's progress engine.
        """
        if request.Test():
            return
        start = time.monotonic()
        deadline, polls = start + self.timeout, 0
        while not request.Test():
            polls += 1
            if polls > 2000:    # past the first millisecond or so, yield the core
                time.sleep(5e-5)
                if time.monotonic() > deadline:
                    raise DistributedError(
                        f"{self.where()}: {what} did not complete within {self.timeout:g} s; "
                        "another rank has stopped (hung, or in a different part of the "
                        "program). Set DataParallel(timeout=...) to wait longer")

    def abort(self, code: int = 1):
        """End every rank of the job now (MPI_Abort); a plain exit without MPI."""
        if self._comm is not None:
            self._comm.Abort(code)
        os._exit(code)

    def __repr__(self):
        kind = "MPI" if self.is_mpi else "local"
        return f"<Communicator {kind}, {self.where()}>"


def launched_size() -> int:
    """The number of processes a launcher says it started (1 when none did)."""
    for name in _LAUNCH_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


# ------------------------------------------------------------- failures

_hooked: set = set()


def abort_on_uncaught_exception(comm: Communicator):
    """Make an uncaught exception on this rank end the whole job (MPI_Abort)
    after its traceback is printed, instead of leaving the other ranks waiting.
    A DistributedError that every rank raises together ends the job normally."""
    if comm.size == 1 or id(comm) in _hooked:
        return
    _hooked.add(id(comm))
    previous = sys.excepthook

    def hook(kind, value, traceback):
        if isinstance(value, DistributedError) and value.collective:
            previous(kind, value, traceback)
            return
        summary = (f"graphnet.distributed: {comm.where()} failed with {kind.__name__}: "
                   f"{value}; aborting all {comm.size} ranks (MPI_Abort)\n")
        sys.stderr.write(summary)
        previous(kind, value, traceback)
        sys.stderr.write(summary)
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.5)   # let the launcher forward this output before the job is torn down
        comm.abort(1)

    sys.excepthook = hook

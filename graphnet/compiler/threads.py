"""How many BLAS threads a plan's matrix products use, chosen per plan from
measured run times.

OpenBLAS starts with one thread per core. Its threads help large products
and hurt small ones: on the seed MLP (batch 32) a second thread buys no speed
and its workers spin on a core while the plan's elementwise kernels run; on
the wide MLP (batch 256) two threads are 1.3x faster. So each plan measures
itself: its first runs are left alone (`WARMUP`), then it runs blocks of
runs at one thread and at the BLAS's own count, alternating (A B B A ...),
and settles on the faster, ties going to one thread (it leaves the other
cores to the rest of the machine). The machine's load changes (with another
busy process, two OpenBLAS threads on two cores can be 10-100x slower on
small products), so a plan measures again after 2,000 runs, 4,000 more, ...
`plan.threads` holds the choice and why, and `plan.explain()` prints it:

    BLAS threads: 1 of 2 (measured: 0.352 ms per run at 1 thread, 0.371 ms at 2; ...)

The count is set through threadpoolctl's controller (about 1 us a call; its
`threadpool_limits` context manager costs about 0.5 ms, too much per run)
while a run is in progress, and the count found before the run is put back
after it. Without threadpoolctl, threads are left alone.

The choice is opt-in: GRAPHNET_BLAS_THREADS=auto, or `plan.threads.auto()`.
Left to itself a plan leaves the thread count alone, because a count chosen
from timings can differ between two runs of the same program, and OpenBLAS
rounds differently at different counts: with the choice on, two trainings
from one seed can end in different weights (seen here: the seed MLP's test
accuracy 97.44% in one run, 97.93% in the next).

What the user says wins:
- GRAPHNET_BLAS_THREADS=auto (measure and choose), =off (the default: leave
  threads alone) or =N (every plan runs with N), read when a plan is compiled;
  `plan.threads.fix(n)` / `.fix(None)` / `.auto()` change one plan;
- an OPENBLAS_NUM_THREADS (OMP_, MKL_, GOTO_) variable turns the automatic
  choice off, and so does a limit in force when a plan runs (threadpoolctl's
  `threadpool_limits(1)` around the training loop): the run keeps it.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

#: The environment variable that overrides the automatic choice.
ENV = "GRAPHNET_BLAS_THREADS"
#: Variables through which a user sets the BLAS's thread count themselves.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS",
                  "MKL_NUM_THREADS")
WARMUP = 3          # first runs of a plan, left alone (caches fill, buffers fault in)
BLOCK = 4           # runs per block at one count; the first of each is dropped
MIN_BLOCKS = 3      # blocks per candidate, at least ...
MIN_SECONDS = 0.01  # ... and this many seconds of kept runs per candidate
MAX_BLOCKS = 25     # (tiny plans stop here)
MARGIN = 0.05       # more threads must be this much faster to be chosen
CLEAR = 2.0         # one candidate this many times slower: decided at once
RETUNE = 2000       # runs after a choice before measuring again (then 4000, ...)
LIMITED = -1        # Blas.enter: a user's limit is in force


class Blas:
    """The BLAS libraries loaded in this process, through threadpoolctl: the
    thread count they start with (`baseline`), get and set, and a count of
    plan runs in progress (the count is process-wide: only the first of
    concurrent runs switches it, and the last puts it back)."""

    def __init__(self, controllers: list):
        self.controllers = controllers
        self.baseline = self.get()
        self.lock = threading.Lock()
        self.active = 0

    def get(self) -> int:
        return self.controllers[0].get_num_threads()

    def set(self, n: int):
        for controller in self.controllers:
            controller.set_num_threads(n)

    def enter(self, n: int, respect_limit: bool):
        """Switch to `n` threads for a run: the count to put back afterwards,
        0 when nothing changed, None when another run is in progress (it
        keeps what that run set), or LIMITED when `respect_limit` and a limit
        set outside graphnet is in force (the run keeps it)."""
        with self.lock:
            self.active += 1
            if self.active > 1:
                return None
            current = self.get()
            if current == n:
                return 0
            if respect_limit and current != self.baseline:
                return LIMITED
            self.set(n)
            return current

    def exit(self, restore):
        with self.lock:
            self.active -= 1
            if restore is not None and restore > 0:
                self.set(restore)


_blas: Blas | None = None
_blas_looked = False
_blas_lock = threading.Lock()


def blas() -> Blas | None:
    """This process's BLAS handle (found on first call), or None without
    threadpoolctl or a BLAS it knows."""
    global _blas, _blas_looked
    if _blas_looked:
        return _blas
    with _blas_lock:
        if not _blas_looked:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                controllers = []
            else:
                controllers = ThreadpoolController().select(user_api="blas").lib_controllers
            # NumPy's own BLAS first: its products are the plan's.
            numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
            controllers.sort(key=lambda c: not str(c.filepath).startswith(numpy_dir))
            _blas = Blas(controllers) if controllers else None
            _blas_looked = True
    return _blas


def _setting(value: str | None):
    """GRAPHNET_BLAS_THREADS's value as "auto", "off" or a positive int."""
    text = (value or "off").strip().lower()
    if text in ("auto", "off"):
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(f"{ENV} must be 'auto', 'off' or a positive thread count; got {value!r}")


class ThreadChoice:
    """A plan's BLAS thread count: `mode` ("auto", "fixed" or "off"),
    `count` (the count its runs use, None while unknown or when left alone),
    `reason` and, in auto mode, the `samples` ({count: [seconds, ...]}).

    `Plan.__call__` brackets each run with `start()` and `finish(token)`.
    """

    def __init__(self, setting=None):
        setting = _setting(os.environ.get(ENV)) if setting is None else setting
        self.samples: dict = {}
        self.runs = 0          # runs started before the choice was made
        self.limited = False   # the last run found a limit set outside graphnet
        if setting == "off":
            self._leave(f"{ENV}=off")
        elif setting == "auto":
            self.auto()
        else:
            self.fix(int(setting), f"{ENV}={setting}")

    def fix(self, n: int | None, why: str = "plan.threads.fix"):
        """Run this plan with `n` BLAS threads (None: leave the count alone)."""
        if n is None:
            return self._leave(why)
        if n < 1:
            raise ValueError(f"plan.threads.fix: a thread count is at least 1; got {n}")
        self.mode, self.count, self.reason = "fixed", n, why
        self._blas = blas()
        if self._blas is None:
            self._leave("threadpoolctl is not installed (pip install threadpoolctl)")

    def auto(self):
        """Choose from measured run times (again, when called after a choice)."""
        self.mode, self.count, self.samples, self.runs = "auto", None, {}, 0
        self._blocks, self._in_block, self._retune_at = 0, 0, RETUNE
        self._blas = blas()
        if self._blas is None:
            return self._leave("threadpoolctl is not installed (pip install threadpoolctl)")
        named = [f"{k}={os.environ[k]}" for k in BLAS_VARIABLES if os.environ.get(k)]
        if named:
            return self._leave(f"{named[0]} is set")
        if self._blas.baseline <= 1:
            return self._leave("the BLAS runs one thread")
        self.candidates = (1, self._blas.baseline)
        self.reason = f"not measured yet: runs {WARMUP + 1}.. time 1 and " \
                      f"{self._blas.baseline} threads"

    def _retune(self):
        """Measure again (the machine's load changes), twice as late next time."""
        was = self.count
        self.count, self.samples, self._blocks, self._in_block = None, {}, 0, 0
        self.runs, self._retune_at = WARMUP, self._retune_at * 2
        self.reason = f"measuring again after {self._retune_at // 2:,} runs at {was}"

    def _leave(self, why: str):
        self.mode, self.count, self.reason, self._blas = "off", None, why, None

    # ------------------------------------------------------------ runs

    def start(self):
        """Before a run: the token `finish` needs (None: nothing to undo)."""
        blas = self._blas
        if blas is None:
            return None
        if self.count is not None:     # settled, or fixed
            if self.mode == "auto":
                self.runs += 1
                if self.runs >= self._retune_at:
                    self._retune()
                    return None
            return blas.enter(self.count, self.mode == "auto"), 0.0, 0
        self.runs += 1
        if self.runs <= WARMUP:
            return None
        n = self.candidates[(self._blocks + self._blocks // 2) % 2]   # A B B A A B ...
        return blas.enter(n, True), time.perf_counter(), n

    def finish(self, token):
        """After a run (whether or not it raised)."""
        if token is None:
            return
        restore, started, n = token
        if n:
            seconds = time.perf_counter() - started
        blas = self._blas
        blas.exit(restore)
        if restore is None:
            return
        self.limited = restore == LIMITED
        if n and not self.limited and self.count is None:
            with blas.lock:
                self._record(n, seconds)

    def _record(self, n: int, seconds: float):
        """Keep a tuning run's time (not the first of its block); decide when
        every candidate has enough."""
        if self.count is not None:
            return
        self._in_block += 1
        if self._in_block > 1:
            self.samples.setdefault(n, []).append(seconds)
        if self._in_block < BLOCK:
            return
        self._in_block = 0
        self._blocks += 1
        if self._blocks % 2:
            return
        samples = [self.samples[c] for c in self.candidates]
        enough = all(len(s) >= MIN_BLOCKS * (BLOCK - 1) and sum(s) >= MIN_SECONDS
                     for s in samples)
        medians = sorted(float(np.median(s)) for s in samples)
        clear = medians[-1] > CLEAR * medians[0]   # a busy machine: stop paying for it
        if enough or clear or self._blocks // 2 >= MAX_BLOCKS:
            self._decide()

    def _decide(self):
        one, many = self.candidates
        medians = {c: float(np.median(self.samples[c])) for c in self.candidates}
        self.count = many if medians[many] < medians[one] * (1 - MARGIN) else one
        self.runs = 0
        kept = len(self.samples[one])
        self.reason = (f"measured: {_ms(medians[one])} per run at 1 thread, "
                       f"{_ms(medians[many])} at {many}; medians of {kept} runs each, "
                       f"{many} chosen only when {MARGIN:.0%} faster")

    def __str__(self) -> str:
        if self.mode == "off":
            return f"BLAS threads: left alone ({self.reason})"
        limit = ("; the last run kept a thread limit set outside graphnet"
                 if self.limited and self.mode == "auto" else "")
        if self.count is None:
            return f"BLAS threads: chosen from this plan's run times ({self.reason}{limit})"
        of = f" of {self._blas.baseline}" if self._blas else ""
        return f"BLAS threads: {self.count}{of} ({self.reason}{limit})"

    def __repr__(self) -> str:
        return f"<ThreadChoice {self.mode} {self.count}>"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"

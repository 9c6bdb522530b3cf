"""The same document gives the same entities alone, in a batch of 64 mixed-length
documents, at any batch_size and with n_process=2; the same seed trains the same
pipeline."""
import random

import numpy
import pytest

from conftest import TRAIN, WORDS, token_vectors
from conftest import train_tiny as train


def mixed_texts(n=64):
    rng = random.Random(1)
    texts = [t for t, _ in TRAIN]
    while len(texts) < n:
        texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 3, 8, 20, 60, 150]))))
    return texts


def ents(docs):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


@pytest.fixture(scope="module", params=["causal", "bidirectional"])
def trained(request, tiny_llama):
    return train(tiny_llama, request.param)


def test_same_entities_alone_in_batch_and_any_batch_size(trained):
    texts = mixed_texts()
    alone = [ents([trained(t)])[0] for t in texts]
    assert sum(map(len, alone)) > 0
    for batch_size in (64, 7, 1000):
        assert ents(trained.pipe(texts, batch_size=batch_size)) == alone


def test_two_processes_give_the_same_result(trained):
    texts = mixed_texts(16)
    assert ents(trained.pipe(texts, n_process=2, batch_size=4)) == ents(trained.pipe(texts))


def test_same_seed_same_pipeline(tiny_llama):
    texts = mixed_texts(8)
    a, b = train(tiny_llama, "bidirectional", seed=3), train(tiny_llama, "bidirectional", seed=3)
    for x, y in zip(token_vectors(a, texts), token_vectors(b, texts)):
        numpy.testing.assert_array_equal(x, y)
    assert ents(a.pipe(texts)) == ents(b.pipe(texts))
    c = train(tiny_llama, "bidirectional", seed=4)
    assert any(not numpy.array_equal(x, z) for x, z in zip(token_vectors(a, texts), token_vectors(c, texts)))

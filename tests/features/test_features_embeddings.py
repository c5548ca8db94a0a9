"""Item title embeddings: packaged encoder, offline, cached by content hash."""

import numpy as np
import pytest
from features_world import TITLES

from pipelines.features import FeatureConfig, embed_texts
from pipelines.text_embeddings import load_text_encoder

TEXTS = list(TITLES.values())


def test_embeddings_are_unit_norm_float32_rows_in_input_order(config):
    vectors = embed_texts([TEXTS[1], TEXTS[0], TEXTS[1]], config)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])


def test_cached_embeddings_do_not_load_the_model(config):
    first = embed_texts(TEXTS, config)
    load_text_encoder.cache_clear()

    second = embed_texts(TEXTS, config)

    assert load_text_encoder.cache_info().misses == 0
    np.testing.assert_array_equal(first, second)


def test_embeddings_are_deterministic_across_fresh_caches(config, tmp_path):
    fresh = FeatureConfig(cache_dir=str(tmp_path / "fresh"))
    np.testing.assert_allclose(embed_texts(TEXTS, fresh), embed_texts(TEXTS, config), atol=1e-6)


def test_similar_titles_are_closer_than_unrelated_ones(config):
    shoes, boots, espresso = embed_texts(
        ["trail running shoes", "hiking boots for trails", "espresso machine"], config
    )
    assert shoes @ boots > shoes @ espresso


def test_no_texts_give_an_empty_matrix(config):
    assert embed_texts([], config).shape == (0, 384)


def test_a_non_string_text_is_rejected_naming_its_position(config):
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embed_texts(["ok", None], config)


def test_an_unknown_text_model_names_the_field(tmp_path):
    config = FeatureConfig(text_model="no-such-model", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="text_model"):
        embed_texts(["a title"], config)

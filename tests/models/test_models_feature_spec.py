import numpy as np
import pytest

from models.feature_spec import CategoricalFeature, FeatureSpec
from pipelines.training_step import LAYOUT

from factories import synthetic_frame

IDS = CategoricalFeature("item_id", "item", (3, 5, 8))
WORDS = CategoricalFeature("device", "request", ("desktop", "mobile"))


@pytest.mark.parametrize(
    ("feature", "values"),
    [
        (IDS, np.array([5, 8, 3, 4, -1], dtype=np.int64)),
        (IDS, np.array([5, 8], dtype=np.int8)),
        (WORDS, np.array(["mobile", "toaster", "desktop"])),
        (WORDS, np.array(["mobile", None, "desktop"], dtype=object)),
    ],
)
def test_arrays_of_the_vocabulary_type_look_up_like_any_other_input(feature, values):
    np.testing.assert_array_equal(feature.lookup(values), feature.lookup(list(values)))


@pytest.mark.parametrize(("feature", "unseen"), [(IDS, 99), (WORDS, "toaster")])
def test_small_and_large_lookups_agree(feature, unseen):
    vocabulary = np.array((*feature.vocabulary, unseen))
    large = np.random.default_rng(0).choice(vocabulary, 10_000)
    expected = np.concatenate([feature.lookup(large[i : i + 100]) for i in range(0, len(large), 100)])
    np.testing.assert_array_equal(feature.lookup(large), expected)
    assert set(expected) == set(range(len(vocabulary)))


def test_text_values_for_a_number_vocabulary_are_converted_before_lookup():
    np.testing.assert_array_equal(IDS.lookup(np.array(["5", "x"], dtype=object)), [2, 0])


def test_numbers_for_a_text_vocabulary_are_compared_as_text():
    numbers = CategoricalFeature("hour", "request", ("1", "2"))
    np.testing.assert_array_equal(numbers.lookup(np.array([2, 7], dtype=object)), [2, 0])


def test_encoding_arrays_or_lists_gives_the_same_model_input():
    frame = synthetic_frame(rows=50)
    spec = FeatureSpec.fit(frame, LAYOUT)
    arrays = {name: frame[name].to_numpy() for name in spec.columns if name in frame}
    lists = {name: list(values) for name, values in arrays.items()}
    a, b = spec.encode(arrays), spec.encode(lists)
    np.testing.assert_array_equal(a.categorical, b.categorical)
    np.testing.assert_array_equal(a.numeric, b.numeric)

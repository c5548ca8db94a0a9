"""The analysis package's public names, imported on first use."""

import pytest

import serving.analysis as analysis


def test_every_public_name_resolves():
    assert set(analysis.__all__) == set(analysis._EXPORTS)
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        analysis.nope  # noqa: B018

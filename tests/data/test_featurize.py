"""Hashing featurizer memo (``pluralrm.data.featurize``)."""
import numpy as np

from pluralrm.data.featurize import HashingFeaturizer


def test_clear_cache_forgets_the_memoised_texts_and_changes_no_output():
    f = HashingFeaturizer(num_buckets=1 << 10, max_length=32, buckets=(8, 32))
    first = f(["a prompt"], ["a response"])["ids"]
    assert f._cache.cache_info().currsize == 2  # the response and the prompt
    f.clear_cache()
    assert f._cache.cache_info().currsize == 0
    np.testing.assert_array_equal(f(["a prompt"], ["a response"])["ids"], first)

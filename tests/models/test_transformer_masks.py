"""Layer inputs of padded and packed rows (``pluralrm.models.transformer.masks``)."""
import jax.numpy as jnp
import numpy as np

from pluralrm.models.transformer.masks import attention_inputs

LEFT = jnp.array([[0, 1, 1], [1, 1, 1]], jnp.int32)  # row 0 left-padded


def test_padded_rows_attend_to_real_keys_and_decoders_also_only_backwards():
    mask, positions = attention_inputs(LEFT, causal=False)
    np.testing.assert_array_equal(mask, np.broadcast_to(np.asarray(LEFT, bool)[:, None, :], (2, 3, 3)))
    np.testing.assert_array_equal(positions, [[0, 0, 1], [0, 1, 2]])
    causal, _ = attention_inputs(LEFT, causal=True)
    expected = np.tril(np.ones((3, 3), bool))[None] & np.asarray(LEFT, bool)[:, None, :]
    np.testing.assert_array_equal(causal, expected)
    assert causal.dtype == jnp.bool_


def test_packed_rows_pass_their_segments_and_positions_through():
    segments = jnp.array([[1, 1, 2, 0]], jnp.int32)
    given = jnp.array([[0, 1, 0, 0]], jnp.int32)
    pairs = jnp.zeros((1, 3, 2), jnp.int32)
    for causal in (False, True):
        mask, positions = attention_inputs(segments > 0, segments, given, causal=causal)
        assert mask.segment_ids is segments and mask.tile_pairs is None and positions is given
        mask, _ = attention_inputs(segments > 0, segments, given, causal=causal, tile_pairs=pairs)
        assert mask.segment_ids is segments and mask.tile_pairs is pairs
    _, counted = attention_inputs(jnp.array([[1, 1, 1, 0]]), segments, causal=True)
    np.testing.assert_array_equal(counted, [[0, 1, 2, 0]])

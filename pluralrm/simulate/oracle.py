"""Oracle features of a simulated society: each response's true value profile.

Training a head on these instead of on text isolates the head from the backbone (the features
are perfect), which is how the head tests and ``experiments/values_study.py`` check that a head
recovers what was planted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pluralrm.simulate.result import SimulationResult


def response_profiles(result: SimulationResult) -> tuple[list[str], np.ndarray]:
    """Every distinct response text of the data and its true value profile ``[R, K]`` float32."""
    keys: dict[str, int] = {}
    vectors = []
    truth = result.truth
    for side in ("chosen", "rejected"):
        for text, profile in zip(result.data[side], truth.profile(side).astype(np.float32)):
            if text not in keys:
                keys[text] = len(vectors)
                vectors.append(profile)
    return list(keys), np.stack(vectors)


def oracle_table(result: SimulationResult, path: str | Path) -> Path:
    """Writes an ``EmbeddingTable`` (``.npz``) mapping each response to its true profile (prompts
    ignored) for ``model.backbone.type=frozen``. Returns the path."""
    from pluralrm.data.embeddings import EmbeddingTable

    texts, profiles = response_profiles(result)
    return EmbeddingTable.write(path, texts, profiles, prompt_in_key=False)


__all__ = ["oracle_table", "response_profiles"]

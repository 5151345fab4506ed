"""The planted ground truth of a simulated society (:class:`Truth`) and its files.

Index conventions: N rows (comparisons), I items (one prompt and a pair of candidates, the
"first" and "second" candidate), G' cells = schema groups (country, language) with annotators,
G countries, L languages, A annotators, K values, H local-harm categories.
"""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.errors import DataError

HARM_TYPES: tuple[str, ...] = ("none", "global", "local")
TRUTH_ARRAYS = "truth.npz"
TRUTH_META = "truth.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps keep the .npz byte-identical across runs


@dataclass(frozen=True, eq=False)
class Truth:
    """Everything planted in a simulated society; the reference every model is checked against.

    Names: ``value_names`` [K], ``countries`` [G], ``languages`` [L], ``group_labels`` [G']
    (``"country=US,language=en"``, the order of every ``[..., G']`` axis).

    Society: ``cell_country`` / ``cell_language`` [G'] ids; ``group_share`` [G'] population
    shares; ``country_value_weights`` [G, K] (w_g); ``language_value_shift`` [L, K];
    ``group_value_weights`` [G', K] (a cell's mean weights w_c); ``annotator_weights`` [A, K]
    (w_a); ``annotator_group`` [A] (cell of each annotator: the planted latent group; with
    ``language_effect = 0`` the cells of one country share weights, so compare mixtures with
    :attr:`annotator_country`); ``local_harm_holders`` [H, G] bool.

    Items: ``profiles`` [I, 2, K] int8 (first, second candidate); ``harm_type`` [I, 2] int8
    (index into :data:`HARM_TYPES`); ``harm_category`` [I, 2] int8 (local category, -1 if none);
    ``item_language`` [I]; ``p_first_group`` [I, G'] each cell's population P(first ≻ second).

    Rows: ``row_item`` [N], ``row_annotator`` [N]; ``chosen_is_first`` [N] bool (ties: the
    first candidate is written as chosen); ``p_annotator`` [N] the probability the row's draw
    used, P(chosen ≻ rejected) for the row's annotator (with ties, its expected label);
    ``p_tie`` [N].

    Parameters: ``scale``, ``within_noise``, ``harm_penalty``, ``tie_strength``.
    """

    value_names: tuple[str, ...]
    countries: tuple[str, ...]
    languages: tuple[str, ...]
    group_labels: tuple[str, ...]
    scale: float
    within_noise: float
    harm_penalty: float
    tie_strength: float
    cell_country: np.ndarray
    cell_language: np.ndarray
    group_share: np.ndarray
    country_value_weights: np.ndarray
    language_value_shift: np.ndarray
    group_value_weights: np.ndarray
    annotator_weights: np.ndarray
    annotator_group: np.ndarray
    local_harm_holders: np.ndarray
    profiles: np.ndarray
    harm_type: np.ndarray
    harm_category: np.ndarray
    item_language: np.ndarray
    p_first_group: np.ndarray
    row_item: np.ndarray
    row_annotator: np.ndarray
    chosen_is_first: np.ndarray
    p_annotator: np.ndarray
    p_tie: np.ndarray

    # ------------------------------------------------------------------ per-row views
    @property
    def num_groups(self) -> int:
        return len(self.group_labels)

    @cached_property
    def row_side(self) -> np.ndarray:
        """``[N]`` int: 0 when the chosen response is the item's first candidate, else 1."""
        return np.where(self.chosen_is_first, 0, 1)

    @cached_property
    def p_group(self) -> np.ndarray:
        """``[N, G']`` each cell's population P(chosen ≻ rejected) for every comparison."""
        p = self.p_first_group[self.row_item]
        return np.where(self.chosen_is_first[:, None], p, 1.0 - p)

    @cached_property
    def p_pooled(self) -> np.ndarray:
        """``[N]`` the whole population's P(chosen ≻ rejected): Σ_c share_c · p_group[:, c]."""
        return self.p_group @ self.group_share

    @cached_property
    def row_group(self) -> np.ndarray:
        """``[N]`` cell of each row's annotator."""
        return self.annotator_group[self.row_annotator]

    @property
    def annotator_country(self) -> np.ndarray:
        """``[A]`` country of each annotator."""
        return self.cell_country[self.annotator_group]

    def p_country(self) -> np.ndarray:
        """``[N, G]`` each country's population P(chosen ≻ rejected) (share-weighted over its cells)."""
        G = len(self.countries)
        mix = np.zeros((self.num_groups, G))
        mix[np.arange(self.num_groups), self.cell_country] = self.group_share
        mix /= mix.sum(axis=0, keepdims=True)
        return self.p_group @ mix

    def profile(self, side: str) -> np.ndarray:
        """``[N, K]`` int8 true value profile of each row's ``"chosen"`` or ``"rejected"`` response."""
        return self.profiles[self.row_item, self._side(side)]

    def row_harm_type(self, side: str) -> np.ndarray:
        """``[N]`` int8 harm type (index into HARM_TYPES) of each row's chosen/rejected response."""
        return self.harm_type[self.row_item, self._side(side)]

    def _side(self, side: str) -> np.ndarray:
        if side == "chosen":
            return self.row_side
        if side == "rejected":
            return 1 - self.row_side
        raise ValueError(f"side must be 'chosen' or 'rejected', got {side!r}")

    def rejects(self) -> np.ndarray:
        """``[I, 2, G']`` bool: cell c rejects the item's first/second candidate as harmful."""
        return rejections(self.harm_type, self.harm_category, self.local_harm_holders[:, self.cell_country])

    def utility_mean(self) -> np.ndarray:
        """``[I, 2, G']`` a cell's mean utility (logits) of each candidate:
        scale · w_c·v − harm_penalty · [c rejects it]."""
        return group_utilities(self.profiles, self.group_value_weights, self.rejects(), self.scale, self.harm_penalty)

    def utility_std(self) -> np.ndarray:
        """``[I, 2]`` the within-cell sd of a candidate's utility: within_noise · scale · ‖v‖
        (the same in every cell)."""
        norm = np.linalg.norm(self.profiles.astype(np.float64), axis=-1)
        return self.within_noise * self.scale * norm

    # ------------------------------------------------------------------ Bayes accuracies
    def _per_group(self, values: np.ndarray) -> np.ndarray:
        total = np.bincount(self.row_group, weights=values, minlength=self.num_groups)
        count = np.bincount(self.row_group, minlength=self.num_groups)
        return total / np.maximum(count, 1)

    def bayes_accuracy_group(self) -> np.ndarray:
        """``[G']`` E[max(p, 1 − p)] with p the row's own cell's population P, over each cell's
        rows: the accuracy ceiling of a model that knows the group but not the annotator."""
        p = self.p_group[np.arange(len(self.row_group)), self.row_group]
        return self._per_group(np.maximum(p, 1.0 - p))

    def bayes_accuracy_annotator(self) -> np.ndarray:
        """``[G']`` E[max(p, 1 − p)] with p = p_annotator: the ceiling of a per-annotator model."""
        return self._per_group(np.maximum(self.p_annotator, 1.0 - self.p_annotator))

    def bayes_accuracy_pooled(self) -> np.ndarray:
        """``[G']`` expected accuracy on each cell's rows of the group-blind Bayes rule (predict the
        population's majority, p_pooled >= ½) when the truth is the cell's p."""
        p = self.p_group[np.arange(len(self.row_group)), self.row_group]
        return self._per_group(np.where(self.p_pooled >= 0.5, p, 1.0 - p))

    # ------------------------------------------------------------------ disagreement
    def disagreement(self) -> dict[str, float]:
        """Between-group disagreement over comparisons (cells weighted by population share):

        - ``std``: mean over rows of sqrt(Σ_c share_c (p_c − p_pooled)²);
        - ``mean_abs``: mean over rows of Σ_c share_c |p_c − p_pooled|;
        - ``max_gap``: mean over rows of max_c p_c − min_c p_c.
        """
        dev = self.p_group - self.p_pooled[:, None]
        return {
            "std": float(np.mean(np.sqrt((dev**2) @ self.group_share))),
            "mean_abs": float(np.mean(np.abs(dev) @ self.group_share)),
            "max_gap": float(np.mean(self.p_group.max(axis=1) - self.p_group.min(axis=1))),
        }

    # ------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def meta(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)}

    def equals(self, other: "Truth") -> bool:
        """Exact equality of every array and name."""
        a, b = self.arrays(), other.arrays()
        return self.meta() == other.meta() and all(
            a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a
        )

    def save(self, directory: str | Path) -> None:
        """Writes ``truth.npz`` (arrays) and ``truth.json`` (names and parameters)."""
        directory = Path(directory)
        write_npz(directory / TRUTH_ARRAYS, self.arrays())
        (directory / TRUTH_META).write_text(json.dumps(self.meta(), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "Truth":
        directory = Path(directory)
        meta_path, arrays_path = directory / TRUTH_META, directory / TRUTH_ARRAYS
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read simulation truth: {e}", file=str(meta_path)) from None
        try:
            with np.load(arrays_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise DataError(f"cannot read simulation truth arrays: {e}", file=str(arrays_path)) from None
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(meta) - set(arrays))
        if missing:
            raise DataError(f"simulation truth lacks {missing}; regenerate it with `pluralrm simulate`",
                            file=str(directory))
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in meta.items() if k in names}
        kwargs.update({k: v for k, v in arrays.items() if k in names})
        return cls(**kwargs)


def rejections(harm_type: np.ndarray, harm_category: np.ndarray, holders: np.ndarray) -> np.ndarray:
    """Which groups reject which candidates: every group rejects a global harm, the holders of a
    local harm's category reject it, and nobody rejects a harmless candidate.

    Args:
      harm_type: ``[...]`` int, index into HARM_TYPES.
      harm_category: ``[...]`` int, local-harm category (ignored unless local).
      holders: ``[H, G']`` bool, group g' rejects category h.

    Returns:
      ``[..., G']`` bool.
    """
    local = (harm_type == 2)[..., None] & holders[np.maximum(harm_category, 0)]
    return (harm_type == 1)[..., None] | local


def group_utilities(profiles: np.ndarray, weights: np.ndarray, rejects: np.ndarray, scale: float,
                    harm_penalty: float) -> np.ndarray:
    """Each group's mean utility of each candidate, U_c(r) = scale · w_c·v_r − penalty · [c rejects r].

    Args:
      profiles: ``[..., K]`` value profiles.  weights: ``[G', K]`` groups' mean value weights.
      rejects: ``[..., G']`` bool (see :func:`rejections`).

    Returns:
      ``[..., G']`` float64 utilities in logits.
    """
    u = scale * (profiles.astype(np.float64) @ weights.T)
    return u - harm_penalty * rejects


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes arrays as an uncompressed ``.npz`` with fixed zip timestamps (byte-reproducible)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE), buffer.getvalue())


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value

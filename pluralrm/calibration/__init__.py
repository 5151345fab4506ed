"""Measuring disagreement across annotator groups, in the data and in a model.

- :mod:`~pluralrm.calibration.agreement`: Krippendorff's alpha, Cohen's and Fleiss' kappa,
  agreement within and between groups (cross-replication reliability), Group Association Index.
- :mod:`~pluralrm.calibration.divergence`: per-unit group preference rates, Jensen–Shannon and
  total variation between groups, OpinionQA / GlobalOpinionQA alignment, contested units.
- :mod:`~pluralrm.calibration.metrics`: accuracy, NLL, Brier, ECE, reliability diagrams,
  temperature scaling.
- :mod:`~pluralrm.calibration.fidelity`: does the model keep the groups' differences?
- :mod:`~pluralrm.calibration.stats`: cluster bootstrap, permutation tests, Holm / BH.
- :func:`analyze` → :class:`CalibrationReport`; :func:`write_report` → md/html/json + PNGs.

Everything works on plain data: a ComparisonDataset and numpy arrays of predictions.
"""
from pluralrm.calibration.agreement import (
    agreement_matrix,
    alpha_from_counts,
    alpha_from_votes,
    cohen_kappa,
    cross_group_kappa,
    fleiss_kappa,
    gai_permutation_test,
    group_association_index,
    group_value_counts,
    krippendorff_alpha,
    normalized_xrr,
    reliability_matrix,
    within_group_alpha,
)
from pluralrm.calibration.analyze import CalibrationReport, analyze
from pluralrm.calibration.divergence import (
    alignment,
    contested_units,
    globalopinionqa_similarity,
    group_difference_test,
    js_distance,
    js_divergence,
    opinionqa_representativeness,
    pairwise_divergence,
    total_variation,
    unit_divergence,
    wasserstein_ordinal,
)
from pluralrm.calibration.fidelity import (
    difference_correlation,
    disagreement_retention,
    unit_group_predictions,
)
from pluralrm.calibration.hidden_context import explained_variance, hidden_context_r2, model_hidden_context
from pluralrm.calibration.metrics import (
    accuracy,
    apply_temperature,
    brier,
    expected_calibration_error,
    fit_temperature,
    fit_temperatures,
    nll,
    reliability_diagram,
)
from pluralrm.calibration.report import write_report
from pluralrm.calibration.stats import (
    benjamini_hochberg,
    bootstrap,
    bootstrap_sums,
    holm,
    permutation_test,
)
from pluralrm.calibration.votes import GroupRates, GroupVotes, group_rates, group_votes

__all__ = [
    "CalibrationReport",
    "GroupRates",
    "GroupVotes",
    "accuracy",
    "agreement_matrix",
    "alignment",
    "alpha_from_counts",
    "alpha_from_votes",
    "analyze",
    "apply_temperature",
    "benjamini_hochberg",
    "explained_variance",
    "hidden_context_r2",
    "model_hidden_context",
    "bootstrap",
    "bootstrap_sums",
    "brier",
    "cohen_kappa",
    "contested_units",
    "cross_group_kappa",
    "difference_correlation",
    "disagreement_retention",
    "expected_calibration_error",
    "fit_temperature",
    "fit_temperatures",
    "fleiss_kappa",
    "gai_permutation_test",
    "globalopinionqa_similarity",
    "group_association_index",
    "group_difference_test",
    "group_rates",
    "group_value_counts",
    "group_votes",
    "holm",
    "js_distance",
    "js_divergence",
    "krippendorff_alpha",
    "nll",
    "normalized_xrr",
    "opinionqa_representativeness",
    "pairwise_divergence",
    "permutation_test",
    "reliability_diagram",
    "reliability_matrix",
    "total_variation",
    "unit_divergence",
    "unit_group_predictions",
    "wasserstein_ordinal",
    "within_group_alpha",
    "write_report",
]

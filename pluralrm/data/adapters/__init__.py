"""Adapters: public preference and rating datasets to ComparisonDatasets.

Each adapter reads the files as their publishers ship them (field names exactly as released),
validates them with the same rules and bad-row policy as :func:`pluralrm.data.load`, and
documents how preferences and labels are derived:

- :func:`hh_rlhf`: Anthropic HH-RLHF transcripts (Bai et al. 2022);
- :func:`prism`: PRISM per-turn ratings joined with the participant survey (Kirk et al. 2024);
- :func:`dices`: DICES safety ratings by a diverse rater pool (Aroyo et al. 2023);
- :func:`popquorn`: POPQUORN offensiveness ratings (Pei & Jurgens 2023);
- :func:`community_alignment`: Meta's Community Alignment multi-turn, multilingual choices
  among candidate sets (Zhang et al. 2025).

Any other table of ratings with rater attributes goes through
:func:`pluralrm.data.convert.ratings_to_pairs` directly.
"""
from pluralrm.data.adapters.community_alignment import CA_GROUPS, community_alignment
from pluralrm.data.adapters.hh_rlhf import hh_rlhf
from pluralrm.data.adapters.prism import PRISM_GROUPS, prism
from pluralrm.data.adapters.ratings import DICES_GROUPS, DICES_SCORES, POPQUORN_GROUPS, dices, popquorn

ADAPTERS = {"hh-rlhf": hh_rlhf, "prism": prism, "dices": dices, "popquorn": popquorn,
            "community-alignment": community_alignment}

__all__ = ["ADAPTERS", "CA_GROUPS", "DICES_GROUPS", "DICES_SCORES", "POPQUORN_GROUPS", "PRISM_GROUPS", "dices", "hh_rlhf",
           "community_alignment", "popquorn", "prism"]

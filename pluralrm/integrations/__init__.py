"""pluralrm inside policy-optimisation pipelines.

- :mod:`pluralrm.integrations.rewards` — :class:`RewardSpec`: whose reward a policy optimises
  (one group, the shared reward, or every group under an aggregation rule), shared by the
  adapters below and the server's OpenRLHF route;
- :mod:`pluralrm.integrations.trl` — a reward function for TRL's ``GRPOTrainer(reward_funcs=...)``
  (imports no torch or TRL itself).

Layer: beside ``score``/``serve`` (above models); the server imports :mod:`.rewards`.
"""
from pluralrm.integrations.rewards import ALL, RewardSpec, compute_rewards, parse_row_group

__all__ = ["ALL", "RewardSpec", "compute_rewards", "parse_row_group"]

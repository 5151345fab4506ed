"""The model layer: backbones, group-conditioned heads, and RewardModel."""
from pluralrm.models.backbones import FrozenBackbone, HashingBackbone, build_backbone
from pluralrm.models.config import BackboneConfig, HeadConfig, ModelConfig
from pluralrm.models.head_registry import build_head
from pluralrm.models.heads import HEADS, Head, PairGap
from pluralrm.models.net import RewardNet, build_net, preference_probability
from pluralrm.models.reward_model import RewardModel

__all__ = [
    "BackboneConfig",
    "FrozenBackbone",
    "HEADS",
    "HashingBackbone",
    "Head",
    "HeadConfig",
    "ModelConfig",
    "PairGap",
    "RewardModel",
    "RewardNet",
    "build_backbone",
    "build_head",
    "build_net",
    "preference_probability",
]

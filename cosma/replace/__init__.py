"""Replacement (eviction) policies, their registry, and the fixed-order planning engine."""

from cosma.hardware import check_budget
from cosma.replace.engine import plan_fixed_order
from cosma.replace.registry import (
    Policy,
    get_policy,
    policies,
    policy_names,
    register_policy,
    replacement_policy,
    unregister_policy,
)
from cosma.replace.state import WalkState

__all__ = [
    "Policy",
    "WalkState",
    "check_budget",
    "get_policy",
    "plan_fixed_order",
    "policies",
    "policy_names",
    "register_policy",
    "replacement_policy",
    "unregister_policy",
]

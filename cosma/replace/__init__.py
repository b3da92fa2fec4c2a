"""Replacement (eviction) policies and the fixed-order planning engine."""

from cosma.hardware import check_budget
from cosma.replace.engine import POLICIES, plan_fixed_order

__all__ = ["POLICIES", "check_budget", "plan_fixed_order"]

"""Operator orders: the default ONNX order and a minimum-peak order (see :mod:`cosma.schedule.minpeak`)."""

from cosma.schedule.minpeak import ORDERS, ScheduleResult, default_schedule, graph_lower_bound, min_peak_order
from cosma.schedule.segments import Segment, cut_points, segments

__all__ = [
    "ORDERS",
    "ScheduleResult",
    "Segment",
    "cut_points",
    "default_schedule",
    "graph_lower_bound",
    "min_peak_order",
    "segments",
]

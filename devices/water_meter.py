"""A water meter (水表): cumulative volume, optional instantaneous flow."""

from devices.base import ClosingCheck, ClosingCondition, DeviceKind, Metric, MetricType, Recognition

KIND = DeviceKind(
    name="water_meter",
    label_zh="水表",
    label_en="Water meter",
    metrics=(
        Metric("volume_m3", "m³", MetricType.COUNTER, "累计用水量", "Volume", required=True, minimum=0,
               utility="water"),
        Metric("flow_lpm", "L/min", MetricType.GAUGE, "瞬时流量", "Flow", minimum=0, maximum=10000),
    ),
    # Water still flowing after closing: a tap left running, or a leak.
    closing=ClosingCheck("flow_lpm", ClosingCondition.ABOVE_FLOW_THRESHOLD),
    # The sum of the water the rooms it measures use, by their timetable.
    simulation="metered_water",
    recognised=Recognition(frozenset({"volume_m3", "flow_lpm"}), rank=3),
)

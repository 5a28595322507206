"""A water meter (水表): cumulative volume, optional instantaneous flow."""

from devices.base import DeviceKind, Metric, MetricType

KIND = DeviceKind(
    name="water_meter",
    label_zh="水表",
    label_en="Water meter",
    metrics=(
        Metric("volume_m3", "m³", MetricType.COUNTER, "累计用水量", "Volume", required=True, minimum=0),
        Metric("flow_lpm", "L/min", MetricType.GAUGE, "瞬时流量", "Flow", minimum=0, maximum=10000),
    ),
)

"""A gas meter (燃气表): cumulative volume of natural gas, optional flow (the kitchen's stoves, a boiler)."""

from devices.base import DeviceKind, Metric, MetricType

KIND = DeviceKind(
    name="gas_meter",
    label_zh="燃气表",
    label_en="Gas meter",
    metrics=(
        Metric("gas_m3", "m³", MetricType.COUNTER, "累计用气量", "Gas used", required=True, minimum=0,
               utility="gas"),
        Metric("gas_flow_m3h", "m³/h", MetricType.GAUGE, "瞬时流量", "Gas flow", minimum=0, maximum=1000),
    ),
    # Gas burning after closing is a matter for the gas alarm, not a reading's threshold here.
    closing=None,
    # The sum of the gas the rooms it measures burn, by their timetable.
    simulation="metered_gas",
)

"""A heat meter (热量表) on a district-heating supply: cumulative heat, optional power and the
supply and return temperatures."""

from devices.base import DeviceKind, Metric, MetricType

KIND = DeviceKind(
    name="heat_meter",
    label_zh="热量表",
    label_en="Heat meter",
    metrics=(
        Metric("heat_gj", "GJ", MetricType.COUNTER, "累计热量", "Heat", required=True, minimum=0,
               utility="heat"),
        Metric("heat_kw", "kW", MetricType.GAUGE, "热功率", "Heat power", minimum=0, maximum=100_000),
        Metric("supply_c", "°C", MetricType.GAUGE, "供水温度", "Supply temperature", minimum=-20, maximum=200),
        Metric("return_c", "°C", MetricType.GAUGE, "回水温度", "Return temperature", minimum=-20, maximum=200),
    ),
    closing=None,
    # The building's heating, by the outdoor season and its opening hours.
    simulation="metered_heat",
)

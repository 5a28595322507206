"""An electricity meter (电表) per building or circuit: cumulative energy, optional power."""

from devices.base import ClosingCheck, ClosingCondition, DeviceKind, Metric, MetricType, Recognition

KIND = DeviceKind(
    name="electricity_meter",
    label_zh="电表",
    label_en="Electricity meter",
    metrics=(
        Metric("energy_kwh", "kWh", MetricType.COUNTER, "累计电量", "Energy", required=True, minimum=0,
               utility="electricity"),
        Metric("power_w", "W", MetricType.GAUGE, "功率", "Power", minimum=-1e6, maximum=1e7),
        Metric("voltage_v", "V", MetricType.GAUGE, "电压", "Voltage", minimum=0, maximum=1000),
        # Negative, like power, where a meter signs the direction (DL/T 645: energy flowing out, e.g. solar).
        Metric("current_a", "A", MetricType.GAUGE, "电流", "Current", minimum=-10000, maximum=10000),
    ),
    # A circuit drawing more than its base load after closing: something was left running.
    closing=ClosingCheck("power_w", ClosingCondition.ABOVE_BASE_LOAD),
    # The sum of the electricity the rooms it measures draw, by their timetable.
    simulation="metered_electricity",
    recognised=Recognition(frozenset({"energy_kwh", "power_w"}), rank=6),
)

"""A water-leak sensor (漏水传感器) on the floor of a kitchen, plant room or under a sink: wet or dry.

Unlike a water meter's flow rules, which infer a leak from consumption, this reports water
where it should not be; it raises its own alert (`leak_detected`)."""

from devices.base import DeviceKind, Metric, MetricType, Recognition, StateWords

KIND = DeviceKind(
    name="leak_sensor",
    label_zh="漏水传感器",
    label_en="Leak sensor",
    metrics=(Metric("leak", "", MetricType.STATE, "漏水", "Leak", required=True,
                    words=StateWords("有水", "无水", "Wet", "Dry")),),
    closing=None,  # water on the floor is an alert (`leak_detected`) at any hour, not a closing chore
    # A floor that stays dry: water comes only from a fault scenario.
    simulation="dry_floor",
    recognised=Recognition(frozenset({"leak"}), rank=1),
)

"""Simulated devices for demos and tests: a kindergarten site file, a seeded model of its day,
and the devices' own formats (vendor MQTT messages, polled Modbus and DL/T 645 meters)."""

from pathlib import Path

DEMO_SITE: Path = Path(__file__).with_name("kindergarten.yaml")

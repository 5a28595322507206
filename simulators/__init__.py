"""Simulated devices for demos and tests: a kindergarten site file and a seeded model of its day."""

from pathlib import Path

DEMO_SITE: Path = Path(__file__).with_name("kindergarten.yaml")

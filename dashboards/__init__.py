"""The web dashboard's templates and static files (served by gateway/api/dashboard.py), and the
Grafana provisioning of the docker-compose stack (grafana/, not part of the package)."""

from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

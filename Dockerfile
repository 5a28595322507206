# The gateway: this checkout installed with pip, run as an unprivileged user.
# docker-compose.yml mounts the site file at /etc/facility/site.yaml and a volume at
# /var/lib/facility (the site file's storage.data_dir); secrets come from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# PDF reports: WeasyPrint lays out text with Pango and HarfBuzz, and Chinese needs a CJK font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .dockerignore lets in only what the build needs.
COPY . .
RUN pip install . \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/facility --no-create-home facility \
    && install -d -o facility -g facility /var/lib/facility

USER facility
WORKDIR /var/lib/facility
EXPOSE 8000
# Exec form: the gateway itself receives SIGTERM and shuts down cleanly.
CMD ["facility-gateway", "run", "--config", "/etc/facility/site.yaml"]

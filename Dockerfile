# The service image: `monitor up`, `monitor ingest`, `monitor detect` and the Streamlit dashboard.
# Build: docker build -t model-monitor:0.1.0 .     Run: see compose.yaml or deploy/helm/model-monitor.
FROM python:3.11.14-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# 1. Dependencies, pinned by constraints.txt (`make lock`, checked by tests/test_lock.py), and the light
#    SDK the project depends on (./sdk, not on a package index). This layer depends only on the
#    dependency lists, the lock and the SDK, so a change to the service's code reinstalls nothing.
COPY pyproject.toml constraints.txt ./
COPY sdk ./sdk
RUN python -c "import tomllib; print('\n'.join(d for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if not d.startswith('model-monitor-sdk')))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt ./sdk -c constraints.txt \
    && rm /tmp/requirements.txt \
    && useradd --create-home --uid 10001 monitor && mkdir -p /data && chown monitor /data

# 2. The code, without touching the dependencies installed above.
COPY README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboards ./dashboards
RUN pip install . --no-deps -c constraints.txt

USER 10001
# Embedded ClickHouse (the default DSN) keeps its files under /data; compose points at a server instead.
ENV MONITOR_CLICKHOUSE_DSN=chdb:///data/db
EXPOSE 8000 8501
# For `monitor up` (the default command). compose.yaml and the Helm chart give `monitor ingest` and the
# dashboard their own checks, on what they serve.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
ENTRYPOINT ["monitor"]
CMD ["up", "--host", "0.0.0.0"]

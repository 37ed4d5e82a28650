# The service image: `monitor up`, `monitor ingest`, `monitor detect` and the Streamlit dashboard.
# Build: docker build -t model-monitor .     Run: see compose.yaml (Kafka + ClickHouse server + Prometheus).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first (cached while only the code changes), then the code.
COPY sdk ./sdk
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY alerts ./alerts
COPY dashboards ./dashboards
# The light SDK (./sdk) is a dependency of the project and is not on a package index: install both at once.
RUN pip install ./sdk . && useradd --create-home --uid 10001 monitor && mkdir -p /data && chown monitor /data

USER monitor
# Embedded ClickHouse (the default DSN) keeps its files under /data; compose points at a server instead.
ENV MONITOR_CLICKHOUSE_DSN=chdb:///data/db
EXPOSE 8000 8501
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
ENTRYPOINT ["monitor"]
CMD ["up", "--host", "0.0.0.0"]

# Deploys the perfloop app itself (not the sandbox image: see sandbox/Dockerfile). The same
# image runs a job worker: `docker run ... perfloop python -m app worker --concurrency 2`
# (compose.yaml runs the app, two workers and PostgreSQL).
# No registry is reachable on the build machines here, so the base image is an ARG: build from
# any Debian/Python 3.11 image you have imported, e.g.
#   docker build --build-arg BASE_IMAGE=perfloop-base:bookworm -t perfloop .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PERFLOOP_DATA_DIR=/data

# Build tools for llama-cpp-python; bubblewrap for the default sandbox backend.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git bubblewrap \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN python -m pip install --upgrade pip wheel \
 && python -m pip install -r requirements.txt

COPY . .
RUN python -m pip install --no-deps -e . \
 && useradd --create-home --uid 10001 perfloop \
 && mkdir -p /data && chown perfloop:perfloop /data

USER perfloop
EXPOSE 8501
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health').read()!=b'ok')"
CMD ["sh", "-c", "alembic upgrade head && exec streamlit run app/main.py --server.port 8501 --server.address 0.0.0.0 --server.headless true"]

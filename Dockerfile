# syntax=docker/dockerfile:1
# The broker as a container: multi-stage, slim, non-root, no keys or config baked in.
#   docker build -t broker .
#   docker run --read-only -p 8080:8080 \
#     -v "$PWD/broker.yaml:/etc/broker/broker.yaml:ro" \
#     -v "$PWD/secrets:/run/secrets/broker:ro" broker
# The same steps run without Docker in tests/test_packaging.py; keep the two in step.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/broker
WORKDIR /src
# Dependencies first, from the lock (lxml and xmlsec pinned as a pair), so this layer caches.
COPY requirements.lock ./
RUN /opt/broker/bin/pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY broker ./broker
RUN /opt/broker/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 broker \
 && useradd --system --uid 10001 --gid broker --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin broker
COPY --from=build /opt/broker /opt/broker
ENV PATH=/opt/broker/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BROKER_CONFIG=/etc/broker/broker.yaml
# lxml and xmlsec must link the same libxml2: fail the build, not the first SAML sign-in.
RUN python -c "import lxml.etree, xmlsec; assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version()"
# Mount points only: the config (ConfigMap / bind mount) and secrets arrive read-only at run time.
RUN mkdir -p /etc/broker /run/secrets/broker
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["broker"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

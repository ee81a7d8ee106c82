# render_api, progress and the edge: Python 3.11, the locked dependencies, a non-root user.
# Build from the repository root:  docker build -f deploy/images/python.Dockerfile -t render-export-api .
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 RENDER_DATA_DIR=/data
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin render \
 && mkdir -p /app /data && chown render /data
WORKDIR /app
COPY requirements.lock pyproject.toml README.md alembic.ini ./
RUN pip install -r requirements.lock
COPY gen ./gen
COPY render_common ./render_common
COPY services ./services
COPY remotion/catalogue ./remotion/catalogue
COPY remotion/protocol ./remotion/protocol
COPY remotion/samples ./remotion/samples
RUN pip install --no-deps . && python -c "import render.v1.render_service_pb2"
USER 10001
# The service to run: services.render_api (50051), services.progress (50052) or
# services.edge (8080, HTTP).
ENV SERVICE=services.render_api
EXPOSE 50051 50052 8080
CMD ["sh", "-c", "exec python -m $SERVICE"]

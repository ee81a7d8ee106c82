# render_worker: Python 3.11 + Node 20 + Remotion 4.0.527 + Debian's chromium-headless-shell.
# Base: node:20-bookworm-slim brings Node 20 (bookworm's own nodejs is 18); Python 3.11 and
# chromium-headless-shell come from Debian bookworm, and so do the Noto fonts the text scenes
# use (fonts-noto-core, fonts-noto-cjk, fonts-noto-color-emoji). Remotion never downloads a
# browser: it is always given REMOTION_BROWSER_EXECUTABLE. Chromium needs a large /dev/shm: run with
# --shm-size=1g (compose: shm_size) or a memory-backed emptyDir on /dev/shm (Kubernetes).
# Build from the repository root:  docker build -f deploy/images/worker.Dockerfile -t render-export-worker .
FROM node:20-bookworm-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    RENDER_DATA_DIR=/data REMOTION_BROWSER_EXECUTABLE=/usr/bin/chromium-headless-shell \
    RENDER_BUNDLE_CACHE=/app/remotion/.bundle-cache
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv chromium-headless-shell \
    fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin render \
 && mkdir -p /app /data && chown render /data
WORKDIR /app
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock pyproject.toml README.md alembic.ini ./
RUN pip install -r requirements.lock
COPY remotion/package.json remotion/package-lock.json ./remotion/
RUN cd remotion && npm ci --no-audit --no-fund
COPY remotion ./remotion
COPY gen ./gen
COPY render_common ./render_common
COPY services ./services
# The fonts of the text scenes (remotion/src/fonts.json) into remotion/public/fonts, which
# the bundle serves (its public/ is a symlink there). Fails the build if one is missing.
RUN pip install --no-deps . \
 && node remotion/scripts/stage-fonts.mjs \
 && mkdir -p "$RENDER_BUNDLE_CACHE" && chown -R render "$RENDER_BUNDLE_CACHE"
USER 10001
# Bundle the compositions at build time so a new pod renders at once (cached by source hash).
RUN cd remotion && node --input-type=module -e "import {ensureBundle} from './lib/bundle-cache.mjs'; await ensureBundle({rootDir: process.cwd(), cacheDir: process.env.RENDER_BUNDLE_CACHE, log: console.error});"
EXPOSE 50053
CMD ["python", "-m", "services.render_worker"]

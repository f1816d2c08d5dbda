# streamplay: API + worker pool + history writer (`deno task start`), or a worker only
# (`deno task worker`, see docker-compose.yml). Chromium and ffmpeg come from Debian.
FROM denoland/deno:debian-2.9.6

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      chromium ffmpeg redis-server fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
# Fetch npm dependencies at build time (from deno.lock), so the container starts offline.
RUN deno install --frozen && deno cache main.ts cli/main.ts \
 && mkdir -p /app/data && chown -R deno:deno /app

USER deno
ENV HOST=0.0.0.0 \
    PORT=8000 \
    STREAMPLAY_DATA_DIR=./data \
    STREAMPLAY_CHROMIUM=/usr/bin/chromium
EXPOSE 8000
VOLUME ["/app/data"]
# A non-loopback HOST requires STREAMPLAY_TOKENS (name:token:role,...): the server refuses
# to start without them. Set STREAMPLAY_PUBLIC_URL to the address clients reach the published
# port at: unset, the URLs handed out (ws_url, stream and recording links) name 127.0.0.1,
# which is the container itself. docker-compose.yml sets both for each service.
CMD ["task", "start"]

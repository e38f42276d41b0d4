# magwatch image: `magwatch run` with the compose configuration by default; any sub-command works
# (`docker compose run --rm magwatch train --help`).

# --- build: compile TypeScript with the dev dependencies, then drop them ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` (the build) needs the sources copied below, and the only other install scripts
# are onnxruntime-node's CUDA download (skipped by .npmrc anyway) and the optional @tensorflow/tfjs-node*
# packages, which download libtensorflow; --omit=optional leaves those out, so inference runs on ONNX Runtime
# and training on TensorFlow.js wasm.
RUN npm ci --ignore-scripts --omit=optional
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-assets.mjs ./scripts/
COPY src ./src
# The build script compiles src/ and copies its page files (the live dashboard) beside the compiled modules.
RUN npm run build && npm prune --omit=dev --omit=optional

# --- runtime: the compiled package and its production dependencies only ---
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json "files" (bin, dist, config, examples) is what the package needs at run time.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY examples ./examples
# /models is where compose mounts model bundles; /var/lib/magwatch takes the line-protocol file when no
# InfluxDB is configured. Both belong to the unprivileged user that runs magwatch.
RUN mkdir -p /models /var/lib/magwatch && chown node:node /models /var/lib/magwatch
USER node
EXPOSE 9464
# /healthz needs no token; slim images have no curl, so node itself probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.MAGWATCH_HTTP_PORT || 9464}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/magwatch.js"]
CMD ["run", "--config", "/app/config/compose/magwatch.yaml"]

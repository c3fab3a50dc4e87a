# syntax=docker/dockerfile:1
# One image, two entrypoints: `ipsec-mesh operator` (Deployment) and `ipsec-mesh agent` (DaemonSet).
# Build: docker build -t ghcr.io/ipsec-mesh/ipsec-mesh:0.1.0 .

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts stay off (see package.json allowScripts); the netlink addon ships prebuilt x64 binaries, sockopt's
# linux-x64 prebuild is unusable and is compiled here (scripts/build-native.sh; the node image has the headers).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/build-native.sh ./scripts/
RUN npm config set nodedir /usr/local && bash scripts/build-native.sh
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="ipsec-mesh" \
      org.opencontainers.image.description="IPsec site-to-site mesh operator and node agent" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# The operator runs as this unprivileged user; the agent's pod overrides it (root with only NET_ADMIN and
# NET_BIND_SERVICE) because XFRM netlink and ports 500/4500 need them.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/ipsec-mesh.js"]
CMD ["--help"]

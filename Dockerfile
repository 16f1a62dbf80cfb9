# syntax=docker/dockerfile:1
#
# One image for every Atelier process. The default command is the API; the same image runs the workers
# and the migration:
#   docker run -e ATELIER_API_TOKENS=… atelier                            API (HOST=0.0.0.0, PORT=3000)
#   docker run … atelier node dist/src/workers/workflow-worker.js         workflow worker
#   docker run … atelier node dist/src/workers/agent-worker.js            agent worker
#   docker run … atelier node dist/src/db/migrate-cli.js                  create + migrate the database
# See docker-compose.yml for a complete stack. The API listens on 0.0.0.0 here, so it refuses to start
# without ATELIER_API_TOKENS, unless ATELIER_API_AUTH=none says a proxy in front authenticates.

# ---- build: compile TypeScript and the prebuilt workflow bundle, then drop dev dependencies ----
# Build and runtime use the same Debian release, so the Temporal SDK's native module matches.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install at the lockfile's versions (the lockfile leaves out other platforms' optional packages, which npm ci refuses).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- spawner: the Go helper through which agent workers start agents (infra/spawner) ----
FROM golang:1.24-bookworm AS spawner
WORKDIR /src
COPY infra/spawner ./
RUN CGO_ENABLED=0 go build -trimpath -o /atelier-spawner .

# ---- runtime ----
FROM node:20-bookworm-slim AS runtime
# util-linux: setpriv, through which child processes started without the spawner helper get a
#   parent-death signal, so they do not outlive a worker killed with SIGKILL.
# git: agents work in repositories. ca-certificates: HTTPS for git and the agent CLIs.
# tini: PID 1 that forwards signals and reaps orphaned grandchildren of agent processes.
RUN apt-get update \
  && apt-get install -y --no-install-recommends util-linux git ca-certificates tini \
  && rm -rf /var/lib/apt/lists/*

# Agent CLIs published on npm, installed globally when asked for, e.g.
#   docker build --build-arg AGENT_NPM_PACKAGES="@anthropic-ai/claude-code @openai/codex" .
# Other agents (aider is a Python program) need an image built FROM this one.
ARG AGENT_NPM_PACKAGES=""
RUN if [ -n "$AGENT_NPM_PACKAGES" ]; then npm install -g --no-audit --no-fund $AGENT_NPM_PACKAGES && npm cache clean --force; fi

WORKDIR /app
# Code and configuration belong to root, so the service (running as `node`) cannot change them.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=spawner /atelier-spawner /usr/local/bin/atelier-spawner
COPY infra/migrations ./infra/migrations
COPY config ./config
# Task working directories are shared with the API at this path (a volume in docker-compose.yml); a
# fresh named volume copies this owner.
RUN mkdir -p /workspaces && chown node:node /workspaces

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    ATELIER_AGENTS_FILE=/app/config/agents.yaml \
    ATELIER_AGENT_SPAWNER=/usr/local/bin/atelier-spawner
USER node
# 3000: the API; 9464 and 9465: the workflow and agent workers' metrics and health endpoints.
EXPOSE 3000 9464 9465
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/api/main.js"]

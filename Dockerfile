# syntax=docker/dockerfile:1
# checkov:skip=CKV_DOCKER_2: One image runs two roles with different probes; ECS defines them per task (the API: ALB health checks on /readyz; the worker: a container check on /healthz), so an image-wide HEALTHCHECK would be wrong for one of them.
# Gatehouse's production image: `gatehouse serve --no-workers` and `gatehouse worker`
# (infra/ runs both from this one image). Built by `cdk deploy` from the repository root.

# --- Build -----------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds on the same builder; the binary
# is copied out of the cache mount so that the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gatehouse \
    && install -D -m 0755 target/release/gatehouse /out/gatehouse

# The RDS certificate bundle, for sslmode=verify-full (GATEHOUSE_DATABASE_URL in infra/).
RUN curl -fsSL --proto '=https' --tlsv1.2 -o /out/rds-global-bundle.pem \
        https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
    && grep -q 'BEGIN CERTIFICATE' /out/rds-global-bundle.pem

# --- Run -------------------------------------------------------------------------------
# bash stays (bookworm-slim has it): the worker's ECS health check uses /dev/tcp, there
# being no HTTP client in the image.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gatehouse \
    && useradd --system --uid 10001 --gid gatehouse --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY --from=build /out/rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# Production writes nothing to disk (the task's root filesystem is read-only); the
# working directory only matters for the embedded default's files.
WORKDIR /tmp
USER 10001:10001
ENV GATEHOUSE_LOG_FORMAT=json \
    GATEHOUSE_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve", "--no-workers"]

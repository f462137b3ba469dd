# Nestor: vector search over gRPC. Two stages on Debian 12:
#   build:   the same scripts CI runs (scripts/install-deps, scripts/build);
#   runtime: debian:12-slim with only the shared libraries the binaries link.
#
#   docker build -t nestor .
#   docker run --rm -p 50051:50051 -p 9100:9100 -v nestor-data:/var/lib/nestor nestor
#   docker run --rm --network host --entrypoint nestor nestor --server 127.0.0.1:50051 stats
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps && rm -rf /var/lib/apt/lists/*
COPY . .
# Tests are built and run by CI (scripts/test); the image needs only the binaries.
RUN scripts/build -DNESTOR_BUILD_TESTS=OFF -DNESTOR_BUILD_BENCH=OFF

FROM debian:12-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2 libssl3 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 \
      libopenblas0-pthread libgfortran5 libgomp1 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/nestor --create-home nestor
COPY --from=build /src/build/server/nestor-server /usr/local/bin/nestor-server
COPY --from=build /src/build/client/nestor /usr/local/bin/nestor
# The offline autotuner; `nestor tune` runs the nestor-tune found next to it.
COPY --from=build /src/build/tools/nestor-tune /usr/local/bin/nestor-tune
USER nestor
VOLUME ["/var/lib/nestor"]
# 50051: gRPC (nestor.v1.IndexService, grpc.health.v1.Health, reflection).
# 9100: Prometheus metrics at /metrics.
EXPOSE 50051 9100
# The server saves its indexes to --data_dir on SIGTERM (docker stop sends it).
STOPSIGNAL SIGTERM
ENTRYPOINT ["nestor-server", "--listen_address", "0.0.0.0", "--data_dir", "/var/lib/nestor"]

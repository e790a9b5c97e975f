# instaface-agent, the election sidecar, with instafacectl for exec probes and operators.
# Build from the repository root:
#   docker build -f docker/agent.Dockerfile -t instaface/agent:0.1.0 .

FROM debian:bookworm AS build
COPY docker/build-binaries /usr/local/sbin/build-binaries
RUN build-binaries deps
COPY . /src
# The build stage is the same in every Dockerfile here (tests/helm/dockerfile_test.py checks it):
# building the images one after another compiles the tree once, and the others take these layers
# from the build cache. INSTAFACE_BUILD_NICE lowers the compiler's priority on a shared machine.
ARG INSTAFACE_BUILD_NICE=0
RUN /src/docker/build-binaries build /out \
      instaface-agent instafacectl instaface-graphserver instaface-bot

FROM debian:bookworm-slim
# Only the shared libraries the two binaries load (ldd); tests/helm/dockerfile_test.py keeps this
# list and the binaries in step.
# apt's package caches go too (about 80 MB), whatever the base image's apt configuration.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libnng1 libhiredis0.14 libssl3 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libspdlog1.10 libfmt9 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --gid 10001 instaface \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin instaface \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/instaface /run/instaface
# The project's shared libraries that the binaries load (libinstaface...), found through
# ld.so.cache.
COPY --from=build /out/lib/instaface-agent/ /usr/local/lib/
COPY --from=build /out/lib/instafacectl/ /usr/local/lib/
RUN ldconfig
COPY --from=build /out/bin/instaface-agent /usr/local/bin/instaface-agent
COPY --from=build /out/bin/instafacectl /usr/local/bin/instafacectl
USER 10001:10001
# nng peers, the death watch, Prometheus metrics. The death watch's port is fixed here so that
# it can be published and let through a firewall (any --death-watch-port flag wins).
ENV INSTAFACE_DEATH_WATCH_PORT=7401
EXPOSE 7400 7401 9400
ENTRYPOINT ["/usr/local/bin/instaface-agent"]

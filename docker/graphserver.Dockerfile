# instaface-graphserver, the social-graph service; its election state comes from the agent
# sidecar through /dev/shm and a Unix socket.
# Build from the repository root:
#   docker build -f docker/graphserver.Dockerfile -t instaface/graphserver:0.1.0 .

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
# Only the shared libraries the binary loads (ldd); tests/helm/dockerfile_test.py keeps this list
# and the binary in step. nng, hiredis, spdlog and prometheus-cpp-pull come with the embedded
# election mode (--election embedded), linked in even when the sidecar is used.
# apt's package caches go too (about 80 MB), whatever the base image's apt configuration.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libmariadb3 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libnng1 libhiredis0.14 libspdlog1.10 libfmt9 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --gid 10001 instaface \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin instaface
# The project's shared libraries that the binaries load (libinstaface...), found through
# ld.so.cache.
COPY --from=build /out/lib/instaface-graphserver/ /usr/local/lib/
RUN ldconfig
COPY --from=build /out/bin/instaface-graphserver /usr/local/bin/instaface-graphserver
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/instaface-graphserver"]
CMD ["--listen", "0.0.0.0:8080"]

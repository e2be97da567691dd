# The platform's image: built by the same install and build scripts as the README and CI, so the
# image cannot drift from what the tests run.
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN scripts/install-deps --run \
 && rm -rf build \
 && PARK_TESTS=0 PARK_BUILD_TYPE=Release scripts/build

FROM debian:12 AS runtime
COPY scripts/install-deps /usr/local/lib/park/install-deps
RUN /usr/local/lib/park/install-deps --runtime && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/park --create-home park
COPY --from=build /src/build/bin/ /usr/local/bin/
# The web dashboard's files, where the gateway looks by default (../share/park/web beside it).
COPY --from=build /src/build/share/ /usr/local/share/
USER park
WORKDIR /var/lib/park
# Each service of docker-compose.yml runs one of the binaries with --config /etc/park/platform.json.
CMD ["parkctl", "config", "check", "/etc/park/platform.json"]

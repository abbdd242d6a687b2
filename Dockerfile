# ocirepl in a container: built from source in the first stage; the image
# that runs holds the binary, CA certificates (distroless carries them and
# the C runtime the binary links) and nothing else. No shell, no package
# manager; runs as the distroless nonroot user.
#
#   podman build -t ocirepl .      # or: docker build -t ocirepl .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin ocirepl \
 && strip target/release/ocirepl

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ocirepl /usr/local/bin/ocirepl
ENTRYPOINT ["/usr/local/bin/ocirepl"]
CMD ["--help"]

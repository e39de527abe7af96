# Lipa as a container: a static, cgo-free binary on a distroless base that
# has CA certificates and time zone data but no shell, running as a non-root
# user. docs/DEPLOY.md explains it; deploy/compose.yaml runs it with
# PostgreSQL behind Caddy.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t lipa .
#   docker run -p 127.0.0.1:8000:8000 -v lipa-data:/var/lib/lipa lipa

FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release `lipa version` and /readyz report (the .git directory is not
# copied into the build, so Go cannot find it out itself).
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
        -ldflags="-s -w -X main.version=${VERSION}" -o /out/lipa ./cmd/lipa \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lipa /usr/local/bin/lipa
# The SQLite database's directory, owned by the image's nonroot user
# (65532), so that a new volume mounted here is writable by Lipa.
COPY --from=build --chown=65532:65532 /out/data /var/lib/lipa
# Defaults for a container: listen on every interface of the container,
# keep the database in the volume, log JSON lines to stdout. Daraja
# credentials and secrets come from the environment at run time (see
# deploy/.env.example), never from the image.
ENV LISTEN_ADDR=0.0.0.0:8000 \
    DATABASE_URL=sqlite:/var/lib/lipa/lipa.db \
    LOG_FILE=-
WORKDIR /var/lib/lipa
VOLUME /var/lib/lipa
EXPOSE 8000
USER nonroot:nonroot
# Healthy once GET /readyz answers 200 (the image has no curl or shell).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/lipa", "healthcheck"]
# A stop lets requests in flight finish (up to 75 s with the default
# MPESA_TIMEOUT): give `docker stop` --time 90, as deploy/compose.yaml does.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/lipa"]
CMD ["serve"]

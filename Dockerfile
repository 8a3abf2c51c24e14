# syntax=docker/dockerfile:1
# verdict: a static binary on a distroless base, running as non-root.
#   docker build -t verdict .
#   docker run -p 8080:8080 -e VERDICT_ADDR=0.0.0.0:8080 -e VERDICT_API_TOKEN=... -v verdict-data:/data verdict serve
#   (beyond loopback verdict refuses to start without a token; see docs/operations.md)

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/verdict ./cmd/verdict \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/verdict /usr/local/bin/verdict
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
ENV VERDICT_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/verdict"]
CMD ["serve"]

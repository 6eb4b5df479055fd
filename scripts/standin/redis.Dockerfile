# Local stand-in for the official redis:7 image, built by scripts/test-compose.sh only when that image is
# missing and no registry is reachable: Debian bookworm's Redis 7.0, `redis-server` on PATH, data in /data,
# run as the redis user, as the official image does.
FROM umw-standin/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
LABEL org.ultramonkey.standin="redis:7 from Debian bookworm's redis-server"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]

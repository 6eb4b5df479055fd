# Local stand-in for the official postgres:16 image, built by scripts/test-compose.sh only when that image is
# missing and no registry is reachable. Debian bookworm ships PostgreSQL 15 (the project needs >= 14); the
# entrypoint honours what docker-compose.yml uses of the official one: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, PGDATA=/var/lib/postgresql/data, password (scram) authentication, `pg_isready` on PATH.
FROM umw-standin/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
VOLUME /var/lib/postgresql/data
EXPOSE 5432
LABEL org.ultramonkey.standin="postgres:16 from Debian bookworm's postgresql-15"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]

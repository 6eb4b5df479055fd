# Local stand-in for the official python:3.11-slim-bookworm image (scripts/test-compose.sh builds it only when
# that image is missing and no registry is reachable): Debian bookworm's own Python 3.11, with `python` and
# `pip` on PATH in /usr/local/bin as in the official image, so the project's Dockerfile runs unchanged.
# extra-ca/ holds the building machine's own trust anchors (/usr/local/share/ca-certificates, e.g. the CA of
# an HTTPS proxy in front of PyPI): the script copies them in, so pip in `docker build` trusts what the host's
# pip trusts. The official image needs none of this.
FROM umw-standin/debian:bookworm
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* && update-ca-certificates >/dev/null \
    && python3 -m venv /usr/local
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
LABEL org.ultramonkey.standin="python:3.11-slim-bookworm from Debian bookworm's python3"
CMD ["python3"]

#!/bin/sh
# As the official redis image: a bare option list is redis-server's, and the server runs as the redis user.
set -eu
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  exec runuser -u redis -- "$@"
fi
exec "$@"

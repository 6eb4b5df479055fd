# One image for every role: web (gunicorn), central worker, beat, and the director agent.
FROM python:3.11-slim-bookworm
# keepalived: a director of a pair runs it under the agent (VRRP only, its files in the agent's state directory)
RUN apt-get update && apt-get install -y --no-install-recommends nftables iproute2 ipvsadm kmod keepalived \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY director director
COPY clusters clusters
COPY ultramonkey_web ultramonkey_web
RUN pip install --no-cache-dir ".[web]"
COPY . .
ENV PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=ultramonkey_web.settings
RUN SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "ultramonkey_web.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]

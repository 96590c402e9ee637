# The image every service of docker-compose.yml runs: the project installed by uv from uv.lock.
FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /app

# Dependencies first (cached while only the code changes), exactly as locked: the core with every
# integration distribution of the uv workspace (the `all` extra).
COPY pyproject.toml uv.lock README.md ./
COPY integrations/github/pyproject.toml integrations/github/README.md integrations/github/
COPY integrations/openai/pyproject.toml integrations/openai/README.md integrations/openai/
COPY integrations/typeform/pyproject.toml integrations/typeform/README.md integrations/typeform/
# `deploy`: gunicorn, which serves the webhook receiver.
RUN uv sync --frozen --no-dev --extra all --extra deploy --no-install-workspace

COPY . .
# /var/lib/beat: beat's schedule volume. A new named volume copies this directory's owner, so
# it must exist here, owned by the user the services run as, or beat cannot write its schedule.
RUN uv sync --frozen --no-dev --extra all --extra deploy \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /var/lib/beat \
    && chown -R app /app /var/lib/beat
USER app

CMD ["celery", "-A", "workers.app", "worker", "-l", "info"]

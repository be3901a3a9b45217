# The Hermes Python image: command API, workers, migrations and the provider simulator.
FROM python:3.11-slim-bookworm
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY db ./db
COPY hermes ./hermes
COPY api ./api
COPY workers ./workers
COPY simulators ./simulators
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1

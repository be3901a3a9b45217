# PostgreSQL 15 with pgTAP, as the tests use it.
FROM postgres:15-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-pgtap \
 && rm -rf /var/lib/apt/lists/*

"""Print the migration that installs pgqueuer's schema for the pinned pgqueuer version.

``python -m hermes.pgqueuer_sql > db/migrations/0002.pgqueuer.sql``; a test checks the
committed file matches, so upgrading pgqueuer without a new migration fails CI.
"""

from __future__ import annotations

import sys

from pgqueuer.adapters.persistence.qb import DBSettings, QueryBuilderEnvironment

HEADER = """\
-- The pgqueuer schema, generated from the pinned pgqueuer version (see pyproject.toml):
--   python -m hermes.pgqueuer_sql > db/migrations/0002.pgqueuer.sql
-- depends: 0001.roles-schemas

"""

GRANTS = """
-- Workers dequeue, heartbeat and log through pgqueuer's own queries.
GRANT USAGE ON SCHEMA pgqueuer TO hermes_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgqueuer TO hermes_worker;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA pgqueuer TO hermes_worker;
GRANT EXECUTE ON FUNCTION pgqueuer.fn_pgqueuer_changed() TO hermes_worker;
"""


def render() -> str:
    install = QueryBuilderEnvironment(DBSettings(db_schema="pgqueuer")).build_install_query()
    return HEADER + install.rstrip("\n") + "\n" + GRANTS


if __name__ == "__main__":
    sys.stdout.write(render())

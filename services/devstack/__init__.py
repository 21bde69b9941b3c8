"""The local stack for tests and `autopost dev`: a Tansu broker, a Postgres, a process supervisor.

Sync/async at a glance:
- async: `start_tansu`, every topic helper, `create_database`/`drop_database`, and
  `ProcessGroup.start/stop/restart/stop_all/wait_unexpected_exit`;
- sync: `tansu_binary`, the `TansuBroker` methods (`pause`, `resume`, `stop`),
  `resolve_database`/`start_embedded_postgres` (may block for ~1 s), `Database.stop`,
  `ProcessGroup.kill/kill_all_now/pid/is_running`.
"""

from .kafka import TansuBroker, TansuNotFound, TansuStartError, start_tansu, tansu_binary
from .postgres import (
    LOCAL_URL,
    Database,
    DatabaseUnavailable,
    create_database,
    drop_database,
    resolve_database,
    start_embedded_postgres,
    with_database,
)
from .processes import ChildExit, ProcessGroup
from .topics import delete_topics, create_missing_topics, list_topics, partition_counts, wait_for_broker

__all__ = [
    "LOCAL_URL",
    "ChildExit",
    "Database",
    "DatabaseUnavailable",
    "ProcessGroup",
    "TansuBroker",
    "TansuNotFound",
    "TansuStartError",
    "create_database",
    "delete_topics",
    "drop_database",
    "create_missing_topics",
    "list_topics",
    "partition_counts",
    "resolve_database",
    "start_embedded_postgres",
    "start_tansu",
    "tansu_binary",
    "wait_for_broker",
    "with_database",
]

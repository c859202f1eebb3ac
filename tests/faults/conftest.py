"""The fault suite: real PostgreSQL clusters and Redis servers of its own, stopped and
started under the service (issue 11, deliverable 7)."""

from tests.faults.pg_cluster import pg_cluster, running_pg_cluster  # noqa: F401
from tests.faults.redis_server import redis_server  # noqa: F401

"""The fault suite: real PostgreSQL clusters and Redis servers of its own, stopped, started
and flushed under the service; worker processes frozen and resumed; history replayed
(issue 11, deliverable 7; figures in the README's "Fault suite")."""

from tests.faults.mail_stack import make_stack  # noqa: F401
from tests.faults.pg_cluster import pg_cluster, running_pg_cluster  # noqa: F401
from tests.faults.redis_server import redis_server  # noqa: F401
from tests.mail_sink import smtp_sink  # noqa: F401

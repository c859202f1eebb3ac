"""A PostgreSQL cluster of the test's own, to stop and start at will: the machine's own
server is never touched. initdb into a temporary directory with the binaries under
/usr/lib/postgresql/*/bin, served on a free port on 127.0.0.1 with trust authentication.

Stopping uses `-m immediate` (every backend killed at once, no shutdown checkpoint), the
closest pg_ctl gets to a crash or a lost host; starting again recovers from the WAL.
PostgreSQL refuses to run as root: when the tests do, the cluster runs as `postgres`."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import free_port


def postgres_bin() -> Path:
    """The newest installed server's binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


class PgCluster:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = port
        self.bin = postgres_bin()
        self._user = "postgres" if os.geteuid() == 0 else None

    # --- lifecycle --------------------------------------------------------------------

    def init(self) -> PgCluster:
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.directory}'\n"
                # fsync off is safe here: a stopped server's writes are in the OS's cache. Never
                # synchronous_commit off: a commit answered before its WAL is written would be
                # lost by `-m immediate`, and the tests check that nothing acknowledged is.
                "fsync = off\nfull_page_writes = off\nmax_connections = 100\n"
            )
        return self

    def start(self, timeout: float = 30.0) -> float:
        """Starts the server; answers the monotonic time at which it first accepted a connection."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return time.monotonic()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        return subprocess.run(
            self._command("pg_ctl", "-D", str(self.data), "status"), capture_output=True, check=False
        ).returncode == 0

    # --- use --------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin / program), *args]
        return ["runuser", "-u", self._user, "--", *command] if self._user else command

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(self._command(program, *args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    """A running cluster of this test module's own; removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="lifecycle-pg-"))
    cluster = PgCluster(directory, free_port()).init()
    cluster.start()
    try:
        yield cluster
    finally:
        if cluster.running:
            cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def running_pg_cluster(pg_cluster: PgCluster) -> PgCluster:
    """The module's cluster, started again if an earlier test left it stopped."""
    if not pg_cluster.running:
        pg_cluster.start()
    return pg_cluster

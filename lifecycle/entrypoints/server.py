"""Running the HTTP API: one uvicorn process, or several that each listen on the port.

With several processes uvicorn shares one listening socket, and the first process to wake
accepts every connection waiting in it: keep-alive clients that connect together all end up
in one process while the others idle. Here each process binds a socket of its own with
SO_REUSEPORT, so the kernel spreads new connections over the processes. The parent starts
them, starts a new one when one dies, and stops them all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess

import uvicorn
from uvicorn.config import STARTUP_FAILURE

try:  # the protocol uvicorn's "auto" would pick: httptools when installed, else h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HTTPProtocol
except ImportError:  # pragma: no cover
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HTTPProtocol

APP = "lifecycle.entrypoints.asgi:app"
log = logging.getLogger("uvicorn.error")


class NoDelayHTTPProtocol(_HTTPProtocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection.

    On a socket uvicorn did not create with asyncio (its --workers mode, and ours), asyncio
    does not set TCP_NODELAY on accepted connections, and every keep-alive answer then waits
    ~40 ms for the client's delayed ACK (uvicorn issue #3149).
    """

    def connection_made(self, transport) -> None:  # noqa: ANN001
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


# uvicorn without a logging config of its own: its lines go to the root handler that
# configure_logging set (text or JSON). No access line: RequestContextMiddleware logs one
# line per request with its id, route template, actor and duration, where uvicorn's would
# repeat it with the client's address and the query string (which may carry a token).
UVICORN_LOGGING = {"log_config": None, "log_level": "info", "access_log": False}


def serve(host: str, port: int, workers: int = 1, app: str = APP, log_format: str | None = None) -> int:
    """Runs the API (or another ASGI app, given as "module:attribute") until stopped;
    answers the exit status. Logs as `log_format` says (None: LIFECYCLE_LOG_FORMAT)."""
    from lifecycle.logs import configure_logging

    configure_logging(log_format)  # the supervisor's own lines too
    if workers <= 1:
        uvicorn.run(app, host=host, port=port, http=NoDelayHTTPProtocol, proxy_headers=False, **UVICORN_LOGGING)
        return 0
    bound_socket(host, port).close()  # the port is free (or ours to share): fail early if not
    return Supervisor(host, port, workers, app, log_format).run()


def bound_socket(host: str, port: int) -> socket.socket:
    """A socket bound to the shared port but not yet listening: the kernel sends a process
    connections only once uvicorn listens on it, after the app has started."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


def _serve_one(host: str, port: int, app: str, log_format: str | None = None) -> None:
    """One server process: its own socket on the shared port, the app, uvicorn's graceful
    shutdown on SIGTERM/SIGINT."""
    _stop_with_parent()
    from lifecycle.logs import configure_logging

    configure_logging(log_format)  # a spawned process starts with none
    sock = bound_socket(host, port)
    # proxy_headers off: the client's address behind a proxy is read by the app, from the
    # proxies in LIFECYCLE_TRUSTED_PROXIES only (lifecycle/adapters/client_addresses.py).
    config = uvicorn.Config(
        app, host=host, port=port, http=NoDelayHTTPProtocol, proxy_headers=False, **UVICORN_LOGGING
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:  # as uvicorn.run answers: the supervisor then stops, not restarts
        sys.exit(STARTUP_FAILURE)


def _stop_with_parent() -> None:
    """A server process whose supervisor was killed (SIGKILL, OOM) would go on holding the
    port and its database connections: it shuts down when it notices it was orphaned."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, app: str = APP, log_format: str | None = None) -> None:
        self.host = host
        self.port = port
        self.workers = workers
        self.app = app
        self.log_format = log_format
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._stopping = threading.Event()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())
        log.info("Starting %d server processes on %s:%d (SO_REUSEPORT)", self.workers, self.host, self.port)
        self._processes = [self._start() for _ in range(self.workers)]
        status = 0
        while not self._stopping.wait(0.5):
            for n, process in enumerate(self._processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:  # the app cannot start: neither can the others
                    log.error("A server process failed to start; stopping")
                    status = STARTUP_FAILURE
                    self._stopping.set()
                    break
                log.warning("Server process %s exited with %s; starting another", process.pid, process.exitcode)
                self._processes[n] = self._start()
        self._stop_all()
        return status

    def _start(self) -> BaseProcess:
        process = self._context.Process(target=_serve_one, args=(self.host, self.port, self.app, self.log_format),
                                        daemon=False)
        process.start()
        return process

    def _stop_all(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()

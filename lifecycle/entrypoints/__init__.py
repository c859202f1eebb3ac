"""Entry points: the `lifecycle` command, the HTTP server, the ASGI app and the worker process.
Each reads its settings and calls lifecycle.bootstrap, the one place that assembles the service."""

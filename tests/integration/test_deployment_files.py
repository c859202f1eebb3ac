"""docker-compose.yml and the Dockerfile (issue 11, deliverable 6), read as files since no Docker
daemon runs here: every service restarts and has a health check, each waits for what it needs
to be healthy, the API and the worker run one image built once, the API's health check asks a
real open readiness route (and is run against a live `lifecycle serve`), the commands are the
CLI's, and the image installs what scripts/install.sh installs: the lock, with its hashes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import yaml
from typer.testing import CliRunner

from api.access import POLICIES
from api.app import create_app
from lifecycle.entrypoints.cli import cli
from tests.conftest import settings_for
from tests.mail_sink import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
IMAGE_OF_THE_PROJECT = {"api", "worker"}


def test_every_service_restarts_unless_stopped_and_has_a_health_check() -> None:
    assert set(SERVICES) == {"postgres", "redis", "api", "worker", "mailpit"}
    for name, service in SERVICES.items():
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), name
        test = check.get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, (name, test)


def test_each_service_starts_once_what_it_needs_is_healthy() -> None:
    needs = {"api": {"postgres", "redis"}, "worker": {"postgres", "redis", "mailpit"}}
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        assert set(depends) == needs.get(name, set()), name
        for other, condition in depends.items():
            assert condition == {"condition": "service_healthy"}, (name, other)
            assert "healthcheck" in SERVICES[other], other


def test_the_api_and_the_worker_run_one_image_built_once() -> None:
    built = [name for name, service in SERVICES.items() if "build" in service]
    assert built == ["api"], "one service builds the image; the other runs it"
    assert SERVICES["api"]["build"] in (".", {"context": "."})
    images = {SERVICES[name].get("image") for name in IMAGE_OF_THE_PROJECT}
    assert len(images) == 1 and None not in images, images
    # the stock images are not the project's
    assert not images & {service.get("image") for name, service in SERVICES.items() if name not in IMAGE_OF_THE_PROJECT}


def _commands_of_the_image() -> list[list[str]]:
    """Every command run in the project's image: the Dockerfile's CMD, the services' commands and
    the health checks that are not Python one-liners."""
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert cmd, "the Dockerfile has an exec-form CMD"
    commands = [yaml.safe_load(cmd.group(1))]
    for name in sorted(IMAGE_OF_THE_PROJECT):
        commands.append(SERVICES[name]["command"])
        test = SERVICES[name]["healthcheck"]["test"]
        if test[1] != "python":
            commands.append(test[1:] if test[0] == "CMD" else shlex.split(test[1]))
    return commands


def test_the_image_s_commands_are_commands_of_the_cli() -> None:
    scripts = PYPROJECT["project"]["scripts"]
    runner = CliRunner()
    for command in _commands_of_the_image():
        assert command[0] in scripts, command
        # --help after the arguments: an unknown command or option fails to parse first
        done = runner.invoke(cli, [*command[1:], "--help"])
        assert done.exit_code == 0, (command, done.output)
    assert ["lifecycle", "check"] in _commands_of_the_image(), "the worker's health check tries its dependencies"
    worker = SERVICES["worker"]["environment"]
    # so that `lifecycle check` tries the store, Redis and the relay, not the embedded defaults
    assert {"LIFECYCLE_DATABASE_URL", "LIFECYCLE_REDIS_URL", "LIFECYCLE_SMTP_HOST"} <= set(worker)
    assert worker["LIFECYCLE_SMTP_HOST"] == "mailpit"


def _api_health_check() -> tuple[str, str]:
    test = SERVICES["api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test  # the slim image has no curl
    found = re.search(r"""http://[^'"]+""", test[3])
    assert found, test
    return test[3], found.group(0)


def test_the_api_health_check_asks_an_open_readiness_route_of_the_app(tmp_path: Path) -> None:
    _, url = _api_health_check()
    parts = urlsplit(url)
    command = SERVICES["api"]["command"]
    assert parts.hostname == "127.0.0.1" and parts.port == int(command[command.index("--port") + 1])
    assert parts.path == "/v1/health/ready"
    document = create_app(settings_for("sqlite", tmp_path)).openapi()
    assert "get" in document["paths"][parts.path], "a route of the app"
    assert "503" in document["paths"][parts.path]["get"]["responses"], "it can say not ready"
    assert POLICIES[("GET", parts.path)].open, "answers without credentials"


def test_the_api_health_check_passes_on_a_live_service_and_fails_when_it_does_not_answer(tmp_path: Path) -> None:
    one_liner, _ = _api_health_check()
    port = free_port()
    local = one_liner.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert local != one_liner

    def health_check(code: str) -> int:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).parent / "lifecycle"), "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.3)
        assert health_check(local) == 0
        # an answer other than 200 fails it
        assert health_check(local.replace("/v1/health/ready", "/v1/health/not-a-route")) != 0
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert health_check(local) != 0, "nothing answers: unhealthy"


def test_the_image_installs_the_lock_with_its_hashes_then_the_project_alone() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    runs = [line for line in lines if line.startswith("RUN ")]
    locked = [run for run in runs if "pip install" in run and "-r requirements.lock" in run]
    assert locked and all("--require-hashes" in run for run in locked), runs
    [project] = [run for run in runs if re.search(r"pip install .* \.(\s|$)", run)]
    assert "--no-deps" in project, "nothing outside the lock is installed"
    assert runs.index(project) > runs.index(locked[0])
    # the lock is for one Python; the image runs that one (scripts/lock.sh refuses another)
    python = re.search(r"with Python (\d+\.\d+)", (ROOT / "requirements.lock").read_text(encoding="utf-8"))
    image = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.M)
    assert python and image and python.group(1) == image.group(1)
    # every package the project ships is copied in
    copied = {part for line in lines if line.startswith("COPY ") for part in line.split()[1:-1]}
    packages = {pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", "requirements.lock"} <= copied, copied


def test_the_api_and_the_worker_share_one_store_broker_and_secret_key() -> None:
    """The worker signs the links the API's routes check, and both work on one store and broker."""
    api, worker = SERVICES["api"]["environment"], SERVICES["worker"]["environment"]
    for variable in ("LIFECYCLE_DATABASE_URL", "LIFECYCLE_REDIS_URL", "LIFECYCLE_SECRET_KEY"):
        assert api[variable] == worker[variable], variable

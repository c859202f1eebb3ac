"""Progress bars of the long commands (rich): drawn on stderr and only when stderr is a
terminal, so what a command writes on stdout stays the same for scripts. Work that walks
the log reports (position reached, log head) through a `Progress` callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int], None]  # (done, total), e.g. (log position reached, log head)


def no_progress(done: int, total: int) -> None:
    """The callback of work that nobody watches."""


def stderr_console():  # noqa: ANN201 - rich.console.Console, imported late
    from rich.console import Console

    # TTY_COMPATIBLE=1 or FORCE_COLOR make rich treat a pipe as a terminal (tests do).
    return Console(stderr=True)


@contextmanager
def progress_bar(description: str, unit: str = "events") -> Iterator[Progress]:
    """A bar for one piece of work; yields its callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    console = stderr_console()
    with Bar(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,  # rich would print the last state once on a pipe
        # rich would send what the command writes to sys.stdout (an export) to the bar's stderr
        redirect_stdout=False, redirect_stderr=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int | None, total: int | None) -> None:
            done = done or 0
            bar.update(task, completed=done, total=max(total or 0, done))

        yield update

"""`python -m lifecycle`: the `lifecycle` command."""

from lifecycle.entrypoints.cli import main

main()

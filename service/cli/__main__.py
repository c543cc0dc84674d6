"""`python -m service.cli`: the `carepath` command."""

from service.cli import main

main()

"""``python -m celeriac``: the command line."""

from celeriac.runtime.cli import main

main()

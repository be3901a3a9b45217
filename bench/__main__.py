"""``python -m bench``: the open-loop benchmark (bench.openloop)."""

from bench.openloop import main

main()

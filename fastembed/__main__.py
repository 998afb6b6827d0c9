"""``python -m fastembed ...``: the ``fastembed`` command, for when its script is not on PATH."""

from fastembed.cli import main

if __name__ == "__main__":
    main()

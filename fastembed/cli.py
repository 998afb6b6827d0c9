"""The ``fastembed`` command line."""

import click

from fastembed import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fastembed")
def main():
    """fastembed: train and use fastText-style text classifiers, fast."""


if __name__ == "__main__":  # pragma: no cover
    main()

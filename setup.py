"""Which packages a distribution holds; everything else is declared in pyproject.toml.

The bundled corpus stays in one place, the repository's top-level ``data/``, and is mapped
into the package as ``fastembed._data`` when a wheel or an sdist is built, so an installed
``fastembed train`` finds it wherever it runs. pyproject.toml alone cannot add a renamed
folder to the packages it discovers: listing them by hand there would drop any subpackage
added later from the wheel without a word.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["fastembed", "fastembed.*"]), "fastembed._data"],
    package_dir={"fastembed._data": "data"},
)

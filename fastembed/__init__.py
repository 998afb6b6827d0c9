"""fastembed: Numba-accelerated sparse-gradient embedding tables and a fastText-style classifier.

Layers, each importable on its own:

* ``fastembed.kernels`` -- pure Numba kernels for embedding lookups and sparse row-wise updates.
* ``fastembed.text``    -- a fastText-format corpus to a dictionary and CSR bags of ids.
* ``fastembed.model``   -- the classifier, its training loop and its file format.
* ``fastembed.cli``     -- the ``fastembed`` command.
"""

__version__ = "0.1.0"

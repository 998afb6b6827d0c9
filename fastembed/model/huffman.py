"""The Huffman tree of hierarchical softmax, built from label counts.

Each label is a leaf; each of the ``n_labels - 1`` internal nodes owns one row of the output
matrix. A label's probability is the product, along its path from the root, of
``sigmoid(score)`` where the path turns to a node's second child (code 1) and
``1 - sigmoid(score)`` where it turns to the first (code 0). Frequent labels get short paths,
so an update costs O(log k) dot products.
"""

import numpy as np


def build_paths(counts):
    """Paths and codes of every label, in CSR layout.

    Parameters
    ----------
    counts : array_like of int, shape (n_labels,)
        Label frequencies, in descending order (the dictionary's order).

    Returns
    -------
    paths : ndarray of int32, shape (n_path_steps,)
        Output-matrix rows (internal nodes) on each label's path, leaf to root.
    codes : ndarray of uint8, shape (n_path_steps,)
        1 where the path goes through a node's second child.
    offsets : ndarray of int64, shape (n_labels + 1,)
        Label ``i``'s path is ``paths[offsets[i]:offsets[i + 1]]``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.size
    if n == 0:
        raise ValueError("hierarchical softmax needs at least one label")
    if np.any(counts[:-1] < counts[1:]):
        raise ValueError("label counts must be in descending order")
    n_nodes = 2 * n - 1
    weight = np.empty(n_nodes, dtype=np.int64)
    weight[:n] = counts
    parent = np.full(n_nodes, -1, dtype=np.int64)
    second_child = np.zeros(n_nodes, dtype=np.uint8)
    # Two queues: leaves from the rarest up, and internal nodes in creation order, which
    # are created with non-decreasing weights; the lighter head is merged next.
    next_leaf = n - 1
    next_inner = n
    for node in range(n, n_nodes):
        pair = []
        for _ in range(2):
            if next_leaf >= 0 and (next_inner >= node or weight[next_leaf] < weight[next_inner]):
                pair.append(next_leaf)
                next_leaf -= 1
            else:
                pair.append(next_inner)
                next_inner += 1
        weight[node] = weight[pair[0]] + weight[pair[1]]
        parent[pair[0]] = node
        parent[pair[1]] = node
        second_child[pair[1]] = 1

    paths, codes, offsets = [], [], [0]
    for leaf in range(n):
        node = leaf
        while parent[node] != -1:
            paths.append(parent[node] - n)
            codes.append(second_child[node])
            node = parent[node]
        offsets.append(len(paths))
    return (np.asarray(paths, dtype=np.int32), np.asarray(codes, dtype=np.uint8),
            np.asarray(offsets, dtype=np.int64))


def tree_arrays(loss, label_counts):
    """``build_paths(label_counts)`` for ``loss == "hs"``; empty arrays for the other losses.

    The kernels take the three arrays whatever the loss, so that they compile once.
    """
    if loss == "hs":
        return build_paths(label_counts)
    return np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64)

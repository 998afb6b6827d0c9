"""Plain NumPy reference of the classifier (tests only): pooling, the output layers, one step.

Written from fastText's ``src/model.cc``, ``src/loss.cc`` and ``buildTree``, and from the
pooling rules in the README, in float64, sharing no code with :mod:`fastembed`:

* :func:`bag_weights`   -- the weight of each row of a bag (mean, sqrt, tfidf);
* :func:`smoothed_idf`  -- scikit-learn's smoothed idf of the rows of a corpus;
* :func:`label_divergence` -- KL(P(label | row) || P(label)) of every row (label_weighting);
* :func:`huffman_paths` -- fastText's Huffman tree of the labels (hierarchical softmax);
* :func:`label_probs`   -- the probability of every label of one bag (softmax, ova, hs);
* :func:`train_step`    -- one SGD / Adagrad / row-wise Adagrad step on one example.

A bag is a 1-D array of row numbers of the input table (repeats allowed).
"""

import numpy as np

ADAGRAD_EPS = 1e-10


# ---------------------------------------------------------------- pooling


def bag_weights(rows, pooling, idf=None):
    """One weight per entry of ``rows``: the hidden vector is ``sum_i w_i * table[rows[i]]``.

    mean: ``1/n``; sqrt: ``1/sqrt(n)``; tfidf: a row met ``tf`` times in the bag weighs
    ``(1 + ln tf) * idf[row]`` in all, shared equally by its occurrences, and the bag's
    per-row weights are scaled to unit L2 norm (all zero if the norm is zero).
    """
    rows = np.asarray(rows, np.int64)
    n = rows.size
    if n == 0:
        return np.zeros(0)
    if pooling == "mean":
        return np.full(n, 1.0 / n)
    if pooling == "sqrt":
        return np.full(n, 1.0 / np.sqrt(n))
    if pooling != "tfidf":
        raise ValueError(pooling)
    unique, inverse, tf = np.unique(rows, return_inverse=True, return_counts=True)
    per_row = (1.0 + np.log(tf)) * np.asarray(idf, np.float64)[unique]
    norm = np.sqrt((per_row ** 2).sum())
    if norm == 0.0:
        return np.zeros(n)
    return (per_row / norm / tf)[inverse]


def smoothed_idf(bags, n_rows):
    """``ln((1 + n_docs) / (1 + df)) + 1`` per row, df counting the bags that hold the row."""
    df = np.zeros(n_rows)
    for rows in bags:
        df[np.unique(np.asarray(rows, np.int64))] += 1
    return np.log((1.0 + len(bags)) / (1.0 + df)) + 1.0


def label_divergence(bags, label_lists, n_rows, n_labels, pseudo):
    """Per row: ``sum_c P(c|r) ln(P(c|r) / P(c))`` with ``P(c|r) = (N[r,c] + s P(c)) / (T[r] + s)``,
    straight from the definition on dense matrices: ``N[r, c]`` bags holding row ``r`` and label
    ``c`` (each counted once per bag), ``T[r] = sum_c N[r, c]``, ``P(c)`` label c's share of the
    (bag, label) pairs. Labels that no bag holds are left out of the sum."""
    X = np.zeros((len(bags), n_rows))
    Y = np.zeros((len(bags), n_labels))
    for b, (rows, labels) in enumerate(zip(bags, label_lists)):
        X[b, np.unique(np.asarray(rows, np.int64))] = 1
        Y[b, np.unique(np.asarray(labels, np.int64))] = 1
    N = X.T @ Y
    prior = Y.sum(0) / Y.sum()
    used = prior > 0
    N, prior = N[:, used], prior[used]
    P = (N + pseudo * prior) / (N.sum(1, keepdims=True) + pseudo)
    return (P * np.log(P / prior)).sum(1)


def hidden(table, rows, weights):
    """The pooled vector of a bag, float64."""
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
        return np.zeros(table.shape[1])
    return np.asarray(weights, np.float64) @ table[rows].astype(np.float64)


# ---------------------------------------------------------------- hierarchical softmax


def huffman_paths(counts):
    """fastText's ``buildTree``: each label's path to the root as (nodes, codes).

    ``counts`` are label counts in descending order. Node ``i`` of the ``n - 1`` internal nodes
    owns row ``i`` of the output matrix; code 1 marks a turn to a node's second child.
    Merging takes the two lightest of (the next leaf, rarest first) and (the next internal
    node, in creation order); a leaf wins only if strictly lighter.
    """
    n = len(counts)
    count = list(counts) + [float("inf")] * (n - 1)
    parent = [-1] * (2 * n - 1)
    second = [0] * (2 * n - 1)
    leaf, node = n - 1, n
    for new in range(n, 2 * n - 1):
        pair = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                pair.append(leaf)
                leaf -= 1
            else:
                pair.append(node)
                node += 1
        count[new] = count[pair[0]] + count[pair[1]]
        parent[pair[0]] = parent[pair[1]] = new
        second[pair[1]] = 1
    paths = []
    for lab in range(n):
        nodes, codes = [], []
        j = lab
        while parent[j] != -1:
            nodes.append(parent[j] - n)
            codes.append(second[j])
            j = parent[j]
        paths.append((np.array(nodes, np.int64), np.array(codes, np.float64)))
    return paths


# ---------------------------------------------------------------- output layers


def sigmoid(x):
    """1 / (1 + exp(-x)), written with tanh so that it cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def label_probs(out, h, loss, paths=None):
    """The probability of every label given the hidden vector ``h``.

    softmax: ``softmax(out @ h)``; ova: ``sigmoid(out @ h)`` per label; hs: along the label's
    path, ``sigmoid(out[node] @ h)`` where the code is 1, ``1 - sigmoid`` where it is 0.
    """
    out = out.astype(np.float64)
    if loss == "softmax":
        s = out @ h
        e = np.exp(s - s.max())
        return e / e.sum()
    if loss == "ova":
        return sigmoid(out @ h)
    if loss == "hs":
        p = sigmoid(out @ h)
        return np.array([np.prod(np.where(codes == 1, p[nodes], 1.0 - p[nodes]))
                         for nodes, codes in paths])
    raise ValueError(loss)


# ---------------------------------------------------------------- one training step


def _output_gradient(out, h, loss, labels, target, paths):
    """(rows of ``out`` touched, d loss / d score of each): fastText's loss layers.

    softmax: every row, ``p - onehot(target)``; ova: every row, ``sigmoid - y`` with y = 1 for
    each of the example's labels; hs: the nodes of the target's path, ``sigmoid - code``.
    """
    if loss == "softmax":
        coef = label_probs(out, h, "softmax")
        coef[target] -= 1.0
        return np.arange(out.shape[0]), coef
    if loss == "ova":
        y = np.zeros(out.shape[0])
        y[list(labels)] = 1.0
        return np.arange(out.shape[0]), sigmoid(out @ h) - y
    nodes, codes = paths[target]
    return nodes, sigmoid(out[nodes] @ h) - codes


def _apply(table, state, row_ids, grads, lr, optimizer):
    """Row ``row_ids[k]`` of ``table`` moves against ``grads[k]``, in order (repeats: in turn)."""
    for row, g in zip(row_ids, grads):
        if optimizer == "sgd":
            table[row] -= lr * g
        elif optimizer == "adagrad":
            state[row] += g * g
            table[row] -= lr * g / (np.sqrt(state[row]) + ADAGRAD_EPS)
        elif optimizer == "rowwise-adagrad":
            state[row] += np.mean(g * g)
            table[row] -= lr * g / (np.sqrt(state[row]) + ADAGRAD_EPS)
        else:
            raise ValueError(optimizer)


def new_state(optimizer, table):
    """Zero optimizer accumulators of ``table``: per element (Adagrad) or per row (row-wise)."""
    if optimizer == "rowwise-adagrad":
        return np.zeros(table.shape[0])
    return np.zeros(table.shape)


def train_step(inp, out, rows, weights, labels, target, loss, lr, optimizer="sgd", paths=None,
               inp_state=None, out_state=None, sample_weight=1.0):
    """One step on one example, in place on the float64 tables ``inp`` and ``out``.

    The gradient reaching the hidden vector is computed with the output layer as it was before
    the step; each row of the bag then moves by its weight times that gradient (every occurrence
    in turn), except the last row of ``inp``, the zero row of unseen n-grams, which never learns.
    ``target`` is the label a softmax or hs step learns (one of ``labels``); ova learns all.
    ``sample_weight`` multiplies the loss, hence every gradient of the step.
    Returns the hidden vector.
    """
    rows = np.asarray(rows, np.int64)
    h = hidden(inp, rows, weights)
    touched, coef = _output_gradient(out, h, loss, labels, target, paths)
    coef = sample_weight * coef
    grad_hidden = coef @ out[touched]
    _apply(out, out_state, touched, np.outer(coef, h), lr, optimizer)
    learns = rows != inp.shape[0] - 1
    _apply(inp, inp_state, rows[learns], np.outer(np.asarray(weights)[learns], grad_hidden), lr,
           optimizer)
    return h

"""Calls of a model's single-line methods from several threads at once, for the thread-safety tests."""

import threading


def results_from_threads(call, inputs, n_threads=4, rounds=15):
    """``call(x)`` for each of ``inputs``, ``rounds`` times over, on each of ``n_threads`` threads
    started together; returns each thread's list of results (``len(inputs) * rounds`` each).

    The threads begin at one barrier and shift their starting input, so that different lines
    (short, long, empty) are in flight at the same moment.
    """
    barrier = threading.Barrier(n_threads)
    results = [None] * n_threads
    errors = []

    def work(t):
        try:
            barrier.wait()
            n = len(inputs)
            results[t] = [call(inputs[(i + 7 * t) % n]) for i in range(n * rounds)]
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [[(i + 7 * t) % len(inputs) for i in range(len(inputs) * rounds)] for t in range(n_threads)], results

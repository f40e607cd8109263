"""Start calls at the same moment, each in its own thread with its own database connection."""

import threading

from django.db import connection


def run_together(calls, *, timeout: float = 60) -> tuple[list, list[BaseException]]:
    """Run every call at once (a barrier releases them together); return (results, errors).

    Results keep the order of `calls` (None where the call raised). Every thread closes its
    connection, so PostgreSQL sees as many sessions as threads and none is left open.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # returned to the test, which asserts on it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results, errors

"""Worker processes that start clean.

A forked child inherits every lock its parent held at the moment of the fork, and only the forking
thread survives in it. In a process that has run DuckDB, Arrow's thread pools or an S3 client, a
lock held by one of their threads is never released in the child, which then waits forever: a
decode pool hung a CI run until its 90 minutes ran out. Workers here fork from a forkserver, a fresh
single-threaded interpreter that has imported the workers' module once, so each worker starts in
milliseconds and inherits no lock (Python 3.14 makes this the default on Linux).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int, preload: str) -> ProcessPoolExecutor:
    """A pool of `workers` processes forked from a clean server that imported `preload` (a module
    name; the first pool of a process decides it, later ones import what they need on first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(workers, mp_context=context)

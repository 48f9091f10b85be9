"""Worker processes that start clean.

A forked child inherits every lock its parent held at the moment of the fork, and only the forking
thread survives in it. In a process that has run DuckDB, Arrow's thread pools or an S3 client, a
lock held by one of their threads is never released in the child, which then waits forever: a
decode pool hung a CI run until its 90 minutes ran out. Workers here fork from a forkserver, a fresh
single-threaded interpreter that has imported the workers' module once, so each worker starts in
milliseconds and inherits no lock (Python 3.14 makes this the default on Linux).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

M_TOP_PAD = -2  # mallopt's parameter number for the heap's top pad (glibc's malloc.h)
TOP_PAD = 256 << 20
_kept = False  # whether this process keeps freed memory (keep_freed_memory succeeded)


def process_pool(workers: int, preload: str) -> ProcessPoolExecutor:
    """A pool of `workers` processes forked from a clean server that imported `preload` (a module
    name; the first pool of a process decides it, later ones import what they need on first use)."""
    keep_arrow_pages()  # before the server starts: its workers inherit its environment
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(workers, mp_context=context, initializer=keep_freed_memory)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep up to TOP_PAD of freed memory at the top of its heap for the next
    allocation, rather than hand it back to the kernel and fault it in again page by page. A decode
    worker allocates and frees texts and arrays of ~32 MiB for every slice, and those faults were
    ~10% of its time (a drifting 125k-item file: 1.29 -> 1.16 s; peak RSS 388 -> 387 MiB).
    Without glibc there is nothing to tune, and nothing changes."""
    global _kept
    try:
        _kept = ctypes.CDLL(None).mallopt(M_TOP_PAD, TOP_PAD) == 1
    except (OSError, AttributeError):
        _kept = False
    return _kept


# Arrow's allocator (mimalloc) hands pages it freed back to the kernel 10 ms later, and a decode
# worker faults them in again for its next slice: 7-10% of its CPU (benchmarks/drift_throughput.py
# --only ours ours-1core, one worker, 8 files of 125k items: drifting 7.2/7.4 -> 6.5/6.6 CPU-s,
# non-drifting 5.8/5.8 -> 5.4/5.4; peak RSS +5%). mimalloc reads this when a process starts, hence
# set in the environment the forkserver starts with; an operator's own setting is kept.
ARROW_KEEPS_PAGES = ("MIMALLOC_PURGE_DELAY", "-1")


def keep_arrow_pages() -> None:
    """Processes started from now on keep the pages Arrow's allocator frees (see ARROW_KEEPS_PAGES)."""
    os.environ.setdefault(*ARROW_KEEPS_PAGES)


def keeps_freed_memory() -> bool:
    return _kept

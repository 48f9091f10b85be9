import os
import threading

from tenantlake.processes import process_pool

LOCK = threading.Lock()


def _can_take_the_lock() -> bool:
    got = LOCK.acquire(timeout=2)
    if got:
        LOCK.release()
    return got


def test_a_worker_does_not_inherit_a_lock_its_parent_holds():
    """A forked worker starts with LOCK held and nobody left to release it (how DuckDB's or Arrow's
    locks hung a decode pool in CI); a worker of the pool starts from a clean interpreter."""
    with process_pool(1, __name__) as pool, LOCK:
        assert pool.submit(_can_take_the_lock).result(timeout=60)


def test_a_worker_keeps_freed_memory_for_its_next_slice():
    """On glibc, pool workers start with malloc's top pad raised (processes.keep_freed_memory); the
    parent process is left as it is."""
    from tenantlake.processes import keeps_freed_memory

    with process_pool(1, __name__) as pool:
        assert pool.submit(keeps_freed_memory).result(timeout=60)
        assert pool.submit(os.getenv, "MIMALLOC_PURGE_DELAY").result(timeout=60) == "-1"  # Arrow's allocator too
    assert not keeps_freed_memory()

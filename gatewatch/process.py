"""Process-wide settings that only Gatewatch's own entry points apply (the `gatewatch` command, the
dashboard's server, app and worker), never a library user's process."""

from __future__ import annotations

__all__ = ["use_system_allocator"]


def use_system_allocator() -> None:
    """Make Arrow allocate through the system allocator in this process. With Arrow's default
    (mimalloc) the dashboard's first render of the 1M-deployment benchmark store was 1-1.5 s slower."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())

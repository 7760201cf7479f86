"""How many CPU threads a process uses: one rule for ``train`` and ``benchmark``.

Measured on shared 2-core machines (README, "Speed"): two torch threads were up to 6x *slower* than
one whenever other processes shared the cores, and one torch thread plus data-loader workers beat two
threads for training. So each local process gets an equal share of the cores, half of it (at least
one) for torch's intra-op threads and the rest for data-loader workers.
"""

from __future__ import annotations

import os

MAX_LOADER_WORKERS = 8


def available_cpus() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cores_per_process(local_processes: int = 1) -> int:
    return max(1, available_cpus() // max(1, local_processes))


def torch_threads(local_processes: int = 1) -> int:
    """Torch intra-op threads per process: half the process's share of the cores, at least 1."""
    return max(1, cores_per_process(local_processes) // 2)


def loader_workers(local_processes: int = 1) -> int:
    """Data-loader workers per process: the process's share of the cores (at most 8)."""
    return min(MAX_LOADER_WORKERS, cores_per_process(local_processes))


def apply(threads: int | None, local_processes: int = 1) -> int:
    """Set torch's thread count (``threads``, else the rule) and return it."""
    import torch

    count = threads or torch_threads(local_processes)
    torch.set_num_threads(count)
    return count

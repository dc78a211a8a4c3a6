"""Keep freed memory for the next batch instead of handing it back to the kernel (glibc's malloc)."""

import ctypes
import logging

log = logging.getLogger(__name__)

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Above the largest fetch response (aiokafka's fetch_max_bytes, 50 MiB by default), so responses and the record
# values sliced from them come from the heap and its pages are reused.
MMAP_THRESHOLD = 64 << 20


def keep_freed_memory(keep_mb: int) -> bool:
    """Let glibc keep up to `keep_mb` MiB of freed memory; whether the C library took the settings.

    Every batch brings a few MiB of fetch responses, socket buffers and record values, freed once it is parsed. By
    default glibc serves such blocks with fresh `mmap`s, or hands the heap's top back to the kernel once it is
    free, so each batch faults in and zeroes new pages on the event loop. With these settings the event loop's page
    faults per GB parsed fell by more than half in most runs (`bench/analyzer_e2e.py` prints them; figures in
    bench/ANALYZER.md). The cost is a resident size that stays near its high-water mark instead of shrinking.
    """
    if keep_mb <= 0:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own C library
    if mallopt is None:
        return False
    taken: bool = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, keep_mb << 20) == 1
    if not taken:
        log.warning("the C library refused malloc settings; freed memory goes back to the kernel as it likes")
    return taken

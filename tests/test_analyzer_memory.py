"""The analyzer's malloc settings: freed blocks the size of a fetch response are reused, not faulted in anew."""

import platform
import resource
import subprocess
import sys

import pytest

BLOCK_MB = 40  # a large fetch response: above glibc's 32 MiB ceiling for its own adaptive mmap threshold

PROGRAM = f"""
import resource, sys
from outrider_analyzer.memory import keep_freed_memory

taken = keep_freed_memory(int(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block = b"x" * ({BLOCK_MB} << 20)  # allocated, written, freed: as a batch's response is
    del block
print(taken, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(keep_mb: int) -> tuple[bool, int]:
    """Whether the settings were taken, and the page faults of ten blocks allocated and freed in turn."""
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(keep_mb)], capture_output=True, text=True, check=True)
    taken, count = out.stdout.split()
    return taken == "True", int(count)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's malloc's")
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    pages = (BLOCK_MB << 20) // resource.getpagesize()
    default_taken, default = faults(0)
    taken, kept = faults(256)
    assert not default_taken  # 0 leaves the C library alone
    assert taken
    assert default > 8 * pages  # each block fresh from mmap, every page faulted in and zeroed
    assert kept < 2 * pages  # the first block's pages, then the same ones again

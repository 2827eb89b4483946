"""Hard limits, checked before anything is expanded, so that no input can make
archc run out of time, memory or stack. A 60-byte spec can otherwise mean 10^10
layers; the expansion pass counts nodes arithmetically first (archc/passes/expand.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1 << 20  # 1 MiB of spec text
    max_tokens: int = 100_000  # names, numbers and signs in one file (parse time)
    max_nesting: int = 64  # brackets, expression operators, block calls
    max_nodes: int = 200_000  # IR nodes after expansion
    max_int: int = (1 << 31) - 1  # any integer a spec writes or computes
    max_includes: int = 64  # files pulled in by `include`


LIMITS = Limits()

"""Stream one export through its plugin and report the process's peak RSS (VmHWM).

python -m benchmarks.parse_rss FILE [PLUGIN]
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.rss_run import MARKER
from koito_import import plugins

if __name__ == "__main__":
    path = Path(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else plugins.detect(path)[0]
    count = sum(1 for _ in plugins.parse(path, name))
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"{count} {MARKER}{peak}")

"""Run the koito-import CLI and report this process's own peak RSS on stderr at exit.

docs/write-floors.md: ``ru_maxrss`` of a child started from a large Python process can report
the parent's peak, so the child reads its own VmHWM from /proc instead.
"""

from __future__ import annotations

import atexit
import sys

MARKER = "KOITO_IMPORT_PEAK_RSS_KB="


def _report() -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write(f"{MARKER}{line.split()[1]}\n")


if __name__ == "__main__":
    atexit.register(_report)
    from koito_import.cli import main

    main(sys.argv[1:])

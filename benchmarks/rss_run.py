"""Run the koito-import CLI and report the peak RSS of the run's processes on stderr at exit.

docs/write-floors.md: ``ru_maxrss`` of a child started from a large Python process can report
the parent's peak, so this process reads its own VmHWM from /proc instead. The parse
workers are forked early (the parent is small then) and reaped before exit; their peak is
``RUSAGE_CHILDREN``'s ``ru_maxrss`` (the largest of them), counted once per worker: an
upper bound of the processes' summed peaks, which is what the target is about.
"""

from __future__ import annotations

import atexit
import resource
import sys

MARKER = "KOITO_IMPORT_PEAK_RSS_KB="
CHILD_MARKER = "KOITO_IMPORT_CHILD_PEAK_RSS_KB="


def _report() -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write(f"{MARKER}{line.split()[1]}\n")
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stderr.write(f"{CHILD_MARKER}{child}\n")


if __name__ == "__main__":
    atexit.register(_report)
    from koito_import.cli import main

    main(sys.argv[1:])

"""Runs commands for test/bench/bench.ts and reports what each cost.

Reads one JSON array per line on stdin (argv, the program first), runs it
with stdio on /dev/null and the environment it was given, and writes one JSON
object per line: wall time, user and system CPU time of the whole process
tree (wait4's rusage, in microseconds, which GNU time rounds to 10 ms), peak
RSS, and the exit status. One long-lived process, so its own start costs the
calls nothing.
"""
import json
import os
import sys
import time

devnull = os.open(os.devnull, os.O_RDWR)
for line in sys.stdin:
    argv = json.loads(line)
    start = time.monotonic_ns()
    pid = os.fork()
    if pid == 0:
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall_ns = time.monotonic_ns() - start
    print(json.dumps({
        "wallMs": wall_ns / 1e6,
        "cpuMs": (usage.ru_utime + usage.ru_stime) * 1000,
        "maxRssKb": usage.ru_maxrss,
        "status": os.waitstatus_to_exitcode(status),
    }), flush=True)

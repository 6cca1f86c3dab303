#!/usr/bin/env python3
"""Peak RSS and CPU time of a daemon and its helper processes, sampled while it runs.

    rss_sample.py PID OUTFILE [INTERVAL]

Every INTERVAL seconds (default 0.2) reads VmHWM (the kernel's high-water mark of resident memory)
of PID and of every process below it (squid's helpers setsid, so the process tree is followed, not
the session), and writes "KIB NPROC CPU_S" to OUTFILE: the sum over those processes of each one's
highest VmHWM seen, how many processes that sum covers, and the CPU seconds (user + system) they
used since they started. Runs until killed or PID is gone.
"""
import os
import sys
import time


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: state ppid pgrp session ..."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tree(root):
    """PIDs (with start times) of root and all processes below it."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = stat_fields(name)
            if fields:
                kids.setdefault(fields[1], []).append((name, fields[19]))
    root_fields = stat_fields(root)
    if not root_fields:
        return []
    found, todo = [(root, root_fields[19])], [root]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def main():
    root, out = sys.argv[1], sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
    peak, cpu = {}, {}
    ticks = os.sysconf("SC_CLK_TCK")
    while True:
        procs = tree(root)
        for key in procs:
            hwm = vm_hwm_kib(key[0])
            if hwm is not None:
                peak[key] = max(peak.get(key, 0), hwm)
            fields = stat_fields(key[0])
            if fields and fields[19] == key[1]:
                cpu[key] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{sum(peak.values())} {len(peak)} {sum(cpu.values()):.2f}\n")
        os.replace(tmp, out)
        if not procs:
            return
        time.sleep(interval)


if __name__ == "__main__":
    main()

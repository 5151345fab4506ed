"""What a benchmark ran on: CPU model and cores (``lscpu``), load, library versions; peak RSS."""
from __future__ import annotations

import os
import platform
import resource
import subprocess


def cpu_model() -> str:
    """``lscpu``'s model name and CPU count (falls back to /proc/cpuinfo)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        model = fields.get("Model name", "").strip() or platform.processor()
        return f"{model}, {fields.get('CPU(s)', '?').strip()} CPUs"
    except (OSError, subprocess.CalledProcessError):
        return f"{platform.processor() or 'unknown CPU'}, {os.cpu_count()} CPUs"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def describe() -> str:
    """One line: CPU, load average now, Python and jax versions, the code's commit."""
    import jax

    return (f"{cpu_model()}; load average {load_average()}; Python {platform.python_version()}, jax {jax.__version__}; "
            f"{code_version()}")


def code_version() -> str:
    """``commit <full hash>`` plus `` (dirty)`` for uncommitted changes: which code a figure came from."""
    from pluralrm.provenance import provenance

    p = provenance()
    return f"commit {p['commit']}{' (dirty: uncommitted changes)' if p['dirty'] else ''}"


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

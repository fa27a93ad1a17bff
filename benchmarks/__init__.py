"""Side-by-side benchmarks of signalpy_lab and its peers: scripts that print tables.

Run ``python -m benchmarks.run`` (or ``make bench``); see ``benchmarks/README.md``.
"""

"""Peer-library side of the signalpy_lab benchmarks.

Why this package exists: signalpy_lab is compared against libraries from
PyPI: ``observ`` (a port of Vue's reactivity), ``nervio`` (a Reactively-style
engine), ``reaktiv`` (plain Python signals) and ``signalpy-kernel`` (a reactive
component microkernel, import name ``signalpy``).  Each ``*_shapes`` module
builds the same four reactive shapes with one peer, and
``signalpy_kernel_tenants`` reproduces signalpy-kernel's own multi-tenant
example at N tenants.  The modules import only the peer library (never
signalpy_lab); the peers are installed by the ``bench`` extra
(``pip install -e '.[test,bench]'``, which ``make bench`` does).  Our side is
``benchmarks/ours_*.py``; ``python -m benchmarks.run`` times both side by side.
"""

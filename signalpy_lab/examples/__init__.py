"""Runnable examples: ``python -m signalpy_lab.examples.multi_tenant``."""

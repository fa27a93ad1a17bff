# Build-time only (the compiled engine, graph.py's ``_EngineLock``): the declaration of
# CPython's pythread.h that Cython's own cpython/pythread.pxd lacks, a lock wait with a
# timeout that returns PY_LOCK_INTR on a signal, so a blocked wait can honour Ctrl-C.
from cpython.pythread cimport PyLockStatus, PyThread_type_lock


cdef extern from "pythread.h":
    PyLockStatus PyThread_acquire_lock_timed(
        PyThread_type_lock lock, long long microseconds, int intr_flag) nogil

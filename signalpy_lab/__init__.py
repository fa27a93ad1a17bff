"""signalpy_lab: a reactive, multi-tenant component microkernel and a notebook lab over it."""

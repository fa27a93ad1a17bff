"""The notebook lab: magics and live widgets over a kernel on its own loop thread.

Layers: ``runner`` (loop thread) and ``model`` (plain data from kernel events) know nothing of
IPython; ``magics``, ``completion`` and ``extension`` are the IPython side; ``widgets`` and
``render`` draw the model.
"""

from .model import LabModel
from .runner import KernelRunner
from .session import LabSession
from .why import Explanation, explain

__all__ = ["Explanation", "KernelRunner", "LabModel", "LabSession", "explain"]

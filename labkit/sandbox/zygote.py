"""Preloaded only by the process grading workers are forked from (``labkit.grading.classrun._worker_context``).

That process ends when the grader does, and an interpreter holding torch, scikit-learn and otter
takes over a second of a core to tear itself down, during which it still holds the grader's
output streams (a caller reading them waits). It has nothing to flush or clean up, so it ends at
once. Its children, the workers, end through multiprocessing's own ``os._exit``, never through
``atexit``, so this changes nothing for them.
"""

import atexit
import os

atexit.register(os._exit, 0)

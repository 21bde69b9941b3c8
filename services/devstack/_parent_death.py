"""Children we start must not outlive us, even when we are killed with SIGKILL."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def kill_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the kernel SIGKILL the child when its parent dies (Linux only).

    The orderly path is an explicit stop; this covers a parent that is itself SIGKILLed.
    Caveat of the kernel feature: it fires when the *thread* that forked exits, so start
    children from the main thread or the event-loop thread, never from a short-lived worker.
    """
    if not sys.platform.startswith("linux"):
        return None
    # Resolved before fork: between fork and exec the child should do as little as possible.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec

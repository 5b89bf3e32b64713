"""A hard per-page deadline for extractors we cannot poll (trafilatura: pure Python over lxml).

One daemon thread per process watches the armed deadlines; when one passes it raises :class:`PageDeadline`
asynchronously in the thread that armed it (``PyThreadState_SetAsyncExc``), so it works in any thread (Dask workers
run tasks in threads; SIGALRM would only reach the main thread).  :func:`run_with_deadline` arms, runs and disarms;
disarming happens under the watchdog's lock and clears a fired but not yet delivered exception, so nothing lands
after the call returns.  ``PageDeadline`` derives from ``BaseException``: the extractor's own ``except Exception``
clauses do not swallow it.  The exception is delivered when the thread next runs Python bytecode: a single long C
call (one lxml parse) finishes first.
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class PageDeadline(BaseException):
    """Raised asynchronously in a thread whose page deadline passed (caught by :func:`run_with_deadline`)."""


class DeadlineExceeded(Exception):
    """:func:`run_with_deadline`'s result when the deadline passed."""


try:  # two prototypes of the same C function: set an exception class, or clear (NULL)
    _SET_ASYNC_EXC = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
    _SET_ASYNC_EXC.argtypes = (ctypes.c_ulong, ctypes.py_object)
    _SET_ASYNC_EXC.restype = ctypes.c_int
    _CLEAR_ASYNC_EXC = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
    _CLEAR_ASYNC_EXC.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
    _CLEAR_ASYNC_EXC.restype = ctypes.c_int
except (AttributeError, OSError):  # pragma: no cover - not CPython
    _SET_ASYNC_EXC = _CLEAR_ASYNC_EXC = None


def _raise_in(ident: int, exc: type | None) -> None:
    """Set (``exc``) or clear (None) the pending asynchronous exception of thread ``ident``."""
    if _SET_ASYNC_EXC is None:  # pragma: no cover
        return
    if exc is None:
        _CLEAR_ASYNC_EXC(ident, None)
    else:
        _SET_ASYNC_EXC(ident, exc)


class _Entry:
    __slots__ = ("ident", "deadline", "fired")

    def __init__(self, ident: int, deadline: float):
        self.ident = ident
        self.deadline = deadline
        self.fired = False


class _Watchdog:
    """The armed entries under one plain ``threading.Lock`` (C-level ``__enter__``: an asynchronous exception
    cannot land between acquiring it and the ``with`` block, as it can inside ``Condition.__enter__``); the
    watchdog thread is woken through a ``queue.SimpleQueue`` (C-level ``put``: no Python-level lock)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue = queue.SimpleQueue()
        self._armed: set = set()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def arm(self, entry: _Entry) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                # started before the entry is armed: nothing can be raised in this thread while it starts
                self._thread = threading.Thread(target=self._run, name="obelics-page-watchdog", daemon=True)
                self._pid = os.getpid()
                self._thread.start()
            self._armed.add(entry)
        self._wake.put(None)

    def disarm(self, entry: _Entry) -> None:
        with self._lock:
            self._armed.discard(entry)
            if entry.fired:  # delivered already, or still pending: clear it (a no-op when delivered)
                _raise_in(entry.ident, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                wake = None
                for e in self._armed:
                    if e.fired:
                        continue
                    if e.deadline <= now:
                        e.fired = True
                        _raise_in(e.ident, PageDeadline)
                    elif wake is None or e.deadline < wake:
                        wake = e.deadline
            try:
                self._wake.get(timeout=None if wake is None else max(0.0, wake - now) + 0.001)
            except queue.Empty:
                pass


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a forked child has no watchdog thread and may inherit a held lock
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


def run_with_deadline(fn: Callable[[], T], deadline: float | None) -> T:
    """``fn()``, or :class:`DeadlineExceeded` once ``time.monotonic()`` passes ``deadline`` (None: no deadline)."""
    if deadline is None:
        return fn()
    if time.monotonic() >= deadline:
        raise DeadlineExceeded()
    entry = _Entry(threading.get_ident(), deadline)  # made before arming: whatever lands after, disarm can run
    timed_out = False
    try:
        _WATCHDOG.arm(entry)
        result = fn()
    except PageDeadline:
        timed_out = True
    finally:
        while True:  # one fire per entry at most: a retry after a late delivery completes
            try:
                _WATCHDOG.disarm(entry)
                break
            except PageDeadline:
                timed_out = True
    if timed_out or time.monotonic() > deadline:  # (the clock check: interpreters without async exceptions)
        raise DeadlineExceeded()
    return result

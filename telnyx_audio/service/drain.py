"""Graceful drain: what SIGTERM does to a server.

``accepting`` -> (first SIGTERM) ``draining``: the server stops accepting (new connections,
new fork sessions), ``/readyz`` answers 503, and the calls already open run on, for at most
``timeout_s`` seconds -> ``stopping``: every call still open is ended and finalised (its
WAVs and summary written). A second SIGTERM goes to ``stopping`` at once; with
``timeout_s=0`` the first one does. Nothing received is lost either way: what is on disk
stays, and every call is finalised.

:class:`Drain` is the state only (thread-safe, no clock of its own: ``now`` is given); each
server does the stopping its own way.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Drain", "loop_answers"]


class Drain:
    """The drain state of one server.

    Parameters
    ----------
    timeout_s : float
        How long open calls may run after the first signal.

    Examples
    --------
    >>> d = Drain(30.0)
    >>> d.state, d.signal(now=100.0), d.draining, d.expired(now=129.0), d.expired(now=130.0)
    ('accepting', 'draining', True, False, True)
    >>> d.signal(now=101.0), d.stop_now.is_set()
    ('stopping', True)
    >>> Drain(0).signal(now=0.0)
    'stopping'
    """

    def __init__(self, timeout_s: float = 0.0) -> None:
        if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or not timeout_s >= 0:
            raise ValueError(f"drain timeout must be a number of seconds >= 0, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self.state = "accepting"
        self.deadline: float | None = None
        self.started = threading.Event()
        self.stop_now = threading.Event()
        self._lock = threading.Lock()

    @property
    def draining(self) -> bool:
        """Whether the server has stopped accepting (draining or stopping)."""
        return self.state != "accepting"

    def signal(self, *, now: float | None = None) -> str:
        """One SIGTERM (or a call to a server's ``drain``): returns the new state.

        Parameters
        ----------
        now : float, optional
            The monotonic clock's time (the clock by default).

        Returns
        -------
        str
            ``"draining"`` after the first, ``"stopping"`` after the second.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.state == "accepting" and self.timeout_s > 0:
                self.state, self.deadline = "draining", now + self.timeout_s
            else:
                self.state = "stopping"
                self.stop_now.set()
            self.started.set()
            return self.state

    def expired(self, *, now: float | None = None) -> bool:
        """Whether the open calls must now be ended (the timeout passed, or a second signal).

        Parameters
        ----------
        now : float, optional
            The monotonic clock's time (the clock by default).

        Returns
        -------
        bool
            True once the calls must end.
        """
        if self.stop_now.is_set():
            return True
        now = time.monotonic() if now is None else now
        return self.deadline is not None and now >= self.deadline


def loop_answers(loop: object, timeout_s: float = 2.0) -> bool:
    """Whether an asyncio loop runs a callback within ``timeout_s`` (the ``/healthz`` check)."""
    import asyncio

    if not isinstance(loop, asyncio.AbstractEventLoop) or loop.is_closed() or not loop.is_running():
        return False
    answered = threading.Event()
    try:
        loop.call_soon_threadsafe(answered.set)
    except RuntimeError:  # closed meanwhile
        return False
    return answered.wait(timeout_s)

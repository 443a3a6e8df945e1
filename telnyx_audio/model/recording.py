"""The data of assembly: :class:`FrameTable` (frames as columns), :class:`Plan` and its
:class:`TrackReport` s, and the :class:`Recording` they make."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from telnyx_audio.model.events import TRACKS, Media
from telnyx_audio.model.track import Track, audio_html

_MISSING = -1


@dataclass(frozen=True)
class FrameTable:
    """Media frames as columns, one row per ``media`` message, in arrival order.

    Attributes
    ----------
    track : np.ndarray of int8, shape (m,)
        0 for inbound, 1 for outbound.
    chunk, timestamp, sequence_number : np.ndarray of int64, shape (m,)
        The counters; -1 where the message had none.
    nbytes : np.ndarray of int64, shape (m,)
        Payload size in codec bytes (after base64); -1 for a frame that arrived with an
        unusable payload (it keeps its place as silence, see :func:`plan`).
    """

    track: np.ndarray
    chunk: np.ndarray
    timestamp: np.ndarray
    sequence_number: np.ndarray
    nbytes: np.ndarray

    def __len__(self) -> int:
        return int(self.track.size)

    @classmethod
    def empty(cls) -> "FrameTable":
        """A table with no frames."""
        z = np.empty(0, np.int64)
        return cls(np.empty(0, np.int8), z, z, z, z)

    @classmethod
    def from_media(cls, events: Iterable[Media]) -> tuple["FrameTable", np.ndarray]:
        """Build a table and its joined payload bytes from parsed media events.

        Parameters
        ----------
        events : iterable of Media
            The ``media`` events of one stream, in arrival order (both tracks mixed).

        Returns
        -------
        (FrameTable, np.ndarray of uint8)
            The payloads joined in order; frame i's bytes start at the sum of the ``nbytes``
            before it.

        Examples
        --------
        >>> t, raw = FrameTable.from_media([Media("outbound", b"\\xff\\xff", chunk=1)])
        >>> t.track.tolist(), t.chunk.tolist(), t.timestamp.tolist(), raw.tolist()
        ([1], [1], [-1], [255, 255])
        """
        media = list(events)
        m = len(media)

        def col(values: Iterable[int | None]) -> np.ndarray:
            return np.fromiter((_MISSING if v is None else v for v in values), np.int64, m)

        table = cls(
            track=np.fromiter((TRACKS.index(e.track) for e in media), np.int8, m),
            chunk=col(e.chunk for e in media),
            timestamp=col(e.timestamp for e in media),
            sequence_number=col(e.sequence_number for e in media),
            nbytes=np.fromiter((len(e.payload) for e in media), np.int64, m),
        )
        return table, np.frombuffer(b"".join(e.payload for e in media), np.uint8)

    @classmethod
    def concat(cls, tables: Sequence["FrameTable"]) -> "FrameTable":
        """Join tables in order (arrival order is the order given).

        Parameters
        ----------
        tables : sequence of FrameTable
            The tables to join, say one per file of a capture split across files.

        Returns
        -------
        FrameTable
            Their rows one after the other; an empty table when all are empty.

        Examples
        --------
        >>> a, _ = FrameTable.from_media([Media("inbound", b"\\x00", chunk=1)])
        >>> b, _ = FrameTable.from_media([Media("outbound", b"\\x00\\x00", chunk=1)])
        >>> FrameTable.concat([a, b]).nbytes.tolist()
        [1, 2]
        """
        tables = [t for t in tables if len(t)]
        if not tables:
            return cls.empty()
        if len(tables) == 1:
            return tables[0]
        return cls(*(np.concatenate(cols) for cols in zip(*(t.columns() for t in tables))))

    def columns(self) -> tuple[np.ndarray, ...]:
        """The five columns, in field order.

        Returns
        -------
        tuple of np.ndarray
            ``track``, ``chunk``, ``timestamp``, ``sequence_number``, ``nbytes``.
        """
        return (self.track, self.chunk, self.timestamp, self.sequence_number, self.nbytes)

    def take(self, rows: np.ndarray) -> "FrameTable":
        """The table of the given rows, in the given order.

        Parameters
        ----------
        rows : np.ndarray of int or bool
            Row indices (or a boolean mask of length ``len(self)``), as numpy indexing takes them.

        Returns
        -------
        FrameTable
            A new table; its columns are copies.

        Examples
        --------
        >>> t, _ = FrameTable.from_media([Media("inbound", b"\\x00", chunk=c) for c in (1, 2, 3)])
        >>> t.take(np.array([2, 0])).chunk.tolist()
        [3, 1]
        """
        return FrameTable(*(c[rows] for c in self.columns()))


#: At most this many items of one kind (gaps, warnings, DTMF events, stream errors) are
#: listed in a summary; a ``*_not_listed`` count says how many more there were (200,000
#: alternating losses would otherwise make a 16 MB ``summary.json``).
MAX_LISTED = 1000


@dataclass(frozen=True)
class Player:
    """An HTML audio player that Jupyter shows (from :meth:`Recording.player`)."""

    html: str = field(repr=False)

    def _repr_html_(self) -> str:
        return self.html


def _count(n: int, noun: str) -> str:
    """``1 gap``, ``2 gaps``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class TrackReport:
    """What assembling one track took.

    ``frames_received`` counts every media message of the track (duplicates and unusable
    ones included); ``frames_expected`` is how many distinct frames the ordering key says
    were sent. ``bad_frames`` arrived but their payload could not be used (not base64):
    they keep their place as silence and are not gaps; ``unplaced`` of them had no usable
    counters either. ``gaps`` lists ``(start_s, duration_ms)`` of each filled gap on the
    shared timeline; ``gaps_capped`` counts gaps cut short by ``max_gap_s`` or by the
    silence budget, and ``capped_ms`` the silence left out (a jump in the counters that long
    is a corrupt or restarted counter, not silence worth filling). ``stray_bytes`` counts
    bytes past the last whole sample of a frame (an odd-length L16 payload), dropped.
    Stateful codecs (G722, OPUS, AMR-WB) fill gaps by concealment: ``concealed_frames``
    frames were made up by the decoder (``concealment`` says how), ``corrupt_frames`` of
    them in place of payloads it rejected, ``fec_frames`` recovered from in-band FEC.

    Attributes
    ----------
    track : str
        ``"inbound"`` or ``"outbound"``.
    frames_received : int
        Every media message of the track, duplicates and unusable ones included.
    frames_expected : int
        Distinct frames the ordering key says were sent.
    duplicates : int
        Messages dropped because a frame with the same key had already arrived.
    reordered : int
        Frames that arrived after a frame the ordering key puts later.
    gaps : tuple of (float, float)
        ``(start_s, duration_ms)`` of each gap filled with silence, on the shared timeline.
    gap_ms : float
        The silence filled in, in total, in milliseconds.
    start_s : float
        Where the track's first frame sits on the shared timeline, in seconds.
    duration_s : float
        Length of the assembled track, in seconds.
    samples_per_frame : int
        The usual frame's length in samples (160 for 20 ms at 8 kHz).
    order_key : str
        The counter that ordered the frames: ``"chunk"``, ``"sequence_number"``,
        ``"timestamp"`` or ``"arrival"``.
    timestamp_unit : str or None
        What the ``timestamp`` counts, read off the data: ``"ms"``, ``"samples"`` of the
        audio or ``"rtp"`` clock ticks; ``None`` when the timestamps could not place frames.
    bad_frames : int
        Frames that arrived with an unusable payload (kept in place as silence).
    gaps_capped : int
        Gaps cut short by ``max_gap_s`` or by the silence budget.
    unplaced : int
        Bad frames that had no usable counters either, so could not be placed.
    stray_bytes : int
        Bytes past the last whole sample of a frame, dropped.
    capped_ms : float
        The silence left out by capped gaps, in milliseconds.
    concealed_frames : int
        Frames made up by a stateful decoder's concealment.
    corrupt_frames : int
        Concealed frames that replaced payloads the decoder rejected.
    fec_frames : int
        Concealed frames recovered from in-band forward error correction (Opus).
    concealment : str
        How the decoder concealed (empty when nothing was concealed).
    """

    track: str
    frames_received: int
    frames_expected: int
    duplicates: int
    reordered: int
    gaps: tuple[tuple[float, float], ...]
    gap_ms: float
    start_s: float
    duration_s: float
    samples_per_frame: int
    order_key: str
    timestamp_unit: str | None
    bad_frames: int = 0
    gaps_capped: int = 0
    unplaced: int = 0
    stray_bytes: int = 0
    capped_ms: float = 0.0
    concealed_frames: int = 0
    corrupt_frames: int = 0
    fec_frames: int = 0
    concealment: str = ""

    @property
    def frames_missing(self) -> int:
        """Frames the ordering key says were sent but never arrived."""
        return self.frames_expected - (self.frames_received - self.duplicates - self.unplaced)

    def describe(self) -> str:
        """One line: ``N of M frames arrived``, what was lost, and what else happened.

        Frames that arrived are counted once (a duplicate is not a second frame received);
        ``frames_received`` keeps every message, duplicates included.

        Returns
        -------
        str
            The line ``telnyx-audio decode`` prints for the track.

        Examples
        --------
        >>> TrackReport("inbound", 10, 12, 1, 0, ((0.1, 40.0),), 40.0, 0.0, 0.24, 160, "chunk", "ms").describe()
        'inbound: 9 of 12 frames arrived (3 missing), 1 gap (40 ms), 1 duplicate dropped'
        """
        arrived = self.frames_received - self.duplicates - self.unplaced
        text = (f"{self.track}: {arrived} of {self.frames_expected} frames arrived ({self.frames_missing} missing),"
                f" {_count(len(self.gaps), 'gap')} ({self.gap_ms:.0f} ms)")
        extra = [f"{_count(self.duplicates, 'duplicate')} dropped" if self.duplicates else "",
                 f"{self.reordered} reordered" if self.reordered else "",
                 f"{self.bad_frames} bad frames" if self.bad_frames else "",
                 f"{self.stray_bytes} stray bytes" if self.stray_bytes else "",
                 f"{self.gaps_capped} gaps capped ({self.capped_ms / 1000:.1f} s left out)" if self.gaps_capped else "",
                 f"{self.concealed_frames} frames concealed ({self.concealment})" if self.concealed_frames else ""]
        return ", ".join([text, *(e for e in extra if e)])

    def as_dict(self) -> dict:
        """A JSON-able dict (for ``summary.json``): the first :data:`MAX_LISTED` gaps.

        Returns
        -------
        dict of str to object
            The report's fields, ``frames_missing``, the first gaps as
            ``{"start_s", "duration_ms"}`` dicts, ``n_gaps`` and ``gaps_not_listed``.
        """
        return {
            "track": self.track,
            "frames_received": self.frames_received,
            "frames_expected": self.frames_expected,
            "frames_missing": self.frames_missing,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "bad_frames": self.bad_frames,
            "gaps": [{"start_s": s, "duration_ms": d} for s, d in self.gaps[:MAX_LISTED]],
            "n_gaps": len(self.gaps),
            "gaps_not_listed": max(len(self.gaps) - MAX_LISTED, 0),
            "gap_ms": self.gap_ms,
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "samples_per_frame": self.samples_per_frame,
            "order_key": self.order_key,
            "timestamp_unit": self.timestamp_unit,
            "gaps_capped": self.gaps_capped,
            "capped_ms": self.capped_ms,
            "unplaced": self.unplaced,
            "stray_bytes": self.stray_bytes,
            "concealed_frames": self.concealed_frames,
            "corrupt_frames": self.corrupt_frames,
            "fec_frames": self.fec_frames,
            "concealment": self.concealment,
        }


@dataclass(frozen=True)
class Plan:
    """Where every frame goes on the shared timeline (from :func:`plan`).

    Attributes
    ----------
    n_samples : int
        Length of the timeline.
    dest : np.ndarray of int64, shape (m,)
        Per frame (arrival order), its first sample on its track's row; -1 if not used.
    samples : np.ndarray of int64, shape (m,)
        Samples in each frame.
    reports : dict of str to TrackReport
    tracks : tuple of str
        Tracks that carried usable media.
    """

    n_samples: int
    dest: np.ndarray
    samples: np.ndarray
    reports: dict[str, TrackReport]
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recording:
    """One stream's audio on one timeline.

    Attributes
    ----------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]``; a track that sent nothing is all zeros.
    sample_rate : int
        The audio's rate: ``start.media_format``'s, except G.722 and AMR-WB (16 kHz).
    encoding : str
        The codec the payloads were decoded from.
    tracks : tuple of str
        The tracks that carried media, in ``TRACKS`` order.
    reports : dict of str to TrackReport
        One per track that had media messages.
    lost_spans : dict of str to np.ndarray, optional
        What :attr:`lost` says, for a recording without reports (a :meth:`slice` keeps its
        part of the whole call's gaps this way).
    """

    audio: np.ndarray
    sample_rate: int
    encoding: str
    tracks: tuple[str, ...]
    reports: dict[str, TrackReport] = field(default_factory=dict)
    lost_spans: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def lost(self) -> dict[str, np.ndarray]:
        """Per track, the spans of the timeline the network lost: float64 ``(start_s, end_s)``
        rows, shape (k, 2), in time order (empty for a track without gaps).

        These are the gaps the track reports list, however they were filled (silence, or a
        decoder's concealment): audio nobody heard. Analysis treats them as neither speech
        nor silence, and :func:`~telnyx_audio.plot_call` draws them.

        Examples
        --------
        >>> report = TrackReport("inbound", 10, 12, 0, 0, ((0.1, 40.0),), 40.0, 0.0, 0.24, 160, "chunk", "ms")
        >>> rec = Recording(np.zeros((2, 1920), np.int16), 8000, "PCMU", ("inbound",), {"inbound": report})
        >>> rec.lost["inbound"].tolist(), rec.lost["outbound"].shape
        ([[0.1, 0.14]], (0, 2))
        """
        if self.lost_spans is not None:
            return {t: np.asarray(self.lost_spans.get(t, np.zeros((0, 2))), np.float64).reshape(-1, 2) for t in TRACKS}
        out = {}
        for t in TRACKS:
            report = self.reports.get(t)
            gaps = np.asarray(report.gaps if report is not None else (), np.float64).reshape(-1, 2)
            out[t] = np.column_stack([gaps[:, 0], gaps[:, 0] + gaps[:, 1] / 1000.0])
        return out

    @property
    def inbound(self) -> Track:
        """The inbound track, int16 of shape (n,), carrying ``sample_rate``."""
        return Track(self.audio[0], self.sample_rate)

    @property
    def outbound(self) -> Track:
        """The outbound track, int16 of shape (n,), carrying ``sample_rate``."""
        return Track(self.audio[1], self.sample_rate)

    def slice(self, start_s: float, end_s: float) -> "Recording":
        """The audio from ``start_s`` to ``end_s`` (seconds on the shared timeline), as a Recording.

        Track reports stay with the whole call, so a slice has none; it keeps the lost spans
        that fall inside it (:attr:`lost`, on its own timeline, which starts at 0).

        Parameters
        ----------
        start_s, end_s : float
            Start and end in seconds, ``0 <= start_s <= end_s``; an end past the call stops
            at its end.

        Returns
        -------
        Recording
            The slice, same sample rate, encoding and tracks; no track reports.

        Raises
        ------
        ValueError
            If ``start_s`` is negative or after ``end_s``.

        Examples
        --------
        >>> rec = Recording(np.zeros((2, 8000), np.int16), 8000, "PCMU", ("inbound",))
        >>> rec.slice(0.25, 0.5).duration_s
        0.25
        """
        if not 0 <= start_s <= end_s:
            raise ValueError(f"slice needs 0 <= start_s <= end_s, got start_s={start_s!r}, end_s={end_s!r}")
        lo, hi = (min(int(round(t * self.sample_rate)), self.audio.shape[1]) for t in (start_s, end_s))
        t0, t1 = lo / self.sample_rate, hi / self.sample_rate
        lost = {}
        for track, spans in self.lost.items():
            inside = spans[(spans[:, 1] > t0) & (spans[:, 0] < t1)]
            lost[track] = np.clip(inside, t0, t1) - t0
        return Recording(self.audio[:, lo:hi], self.sample_rate, self.encoding, self.tracks, lost_spans=lost)

    def turn(self, k: int, analysis: object = None) -> "Recording":
        """The ``k``-th turn of the call (from :func:`telnyx_audio.analyze_call`), as a slice.

        Parameters
        ----------
        k : int
            The turn's index in the call's turn table; negative counts from the end.
        analysis : CallAnalysis, optional
            A :class:`~telnyx_audio.analysis.CallAnalysis` of this recording, to avoid
            measuring the call again; by default the call is analysed.

        Returns
        -------
        Recording
            The turn's span of the call, as :meth:`slice` gives it.

        Raises
        ------
        IndexError
            If the call has no turn ``k``.
        """
        from telnyx_audio.analysis import analyze_call

        turns = (analysis if analysis is not None else analyze_call(self)).turns
        if not -len(turns) <= k < len(turns):
            raise IndexError(f"turn {k} out of range: the call has {len(turns)} turns")
        row = turns.iloc[k]
        return self.slice(float(row["start_s"]), float(row["end_s"]))

    def _repr_html_(self) -> str:
        """An audio player (inbound left, outbound right) and a one-line summary, for Jupyter:
        the first :data:`~telnyx_audio.model.track.PLAYER_MAX_S` seconds (2 minutes); see
        :meth:`player` for more or less."""
        return self.player()._repr_html_()

    def player(self, *, max_s: float | None = None) -> "Player":
        """A notebook audio player of the first ``max_s`` seconds (default
        :data:`~telnyx_audio.model.track.PLAYER_MAX_S`): each minute of 8 kHz stereo adds
        about 2.6 MB of base64 to the notebook.

        Parameters
        ----------
        max_s : float, optional
            Seconds of audio the player holds.

        Returns
        -------
        Player
            Shown by Jupyter as an audio player.

        Examples
        --------
        >>> rec = Recording(np.zeros((2, 8000 * 5), np.int16), 8000, "PCMU", ("inbound", "outbound"))
        >>> html = rec.player(max_s=1)._repr_html_()
        >>> "the player holds the first 1 s" in html, len(html) < len(rec._repr_html_())
        (True, True)
        """
        summary = f"{self.encoding} {self.sample_rate} Hz, {self.duration_s:.2f} s, tracks: {', '.join(self.tracks) or 'none'}"
        return Player(audio_html(self.audio, self.sample_rate, summary, max_s=max_s))

    @property
    def duration_s(self) -> float:
        """Length of the shared timeline in seconds."""
        return self.audio.shape[1] / self.sample_rate

    def to_float(self) -> np.ndarray:
        """``audio`` as float32 in [-1, 1), shape (2, n), for analysis.

        Returns
        -------
        np.ndarray of float32, shape (2, n)
            ``[inbound, outbound]`` on axis 0, each sample divided by 32768.

        Examples
        --------
        >>> rec = Recording(np.full((2, 4), -32768, np.int16), 8000, "PCMU", ("inbound",))
        >>> rec.to_float()[0].tolist()
        [-1.0, -1.0, -1.0, -1.0]
        """
        return self.audio.astype(np.float32) / 32768.0

    def __repr__(self) -> str:
        if self.reports:
            parts = ", ".join(
                f"{t}: {r.frames_received - r.duplicates - r.unplaced} frames, {_count(len(r.gaps), 'gap')} ({r.gap_ms:.0f} ms)"
                for t, r in self.reports.items()
            )
        else:  # a slice, or a recording made from arrays: the tracks, and what of them was lost
            lost = self.lost
            parts = ", ".join(
                f"{t}: {_count(len(lost[t]), 'gap')}"
                f" ({(lost[t][:, 1] - lost[t][:, 0]).sum() * 1000:.0f} ms)" for t in self.tracks
            )
        return (
            f"<Recording {self.encoding} {self.sample_rate} Hz {self.duration_s:.2f} s"
            f" tracks=[{parts}]>"
        )

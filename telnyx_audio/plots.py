"""Plots of call audio with matplotlib: spectrograms, waveforms, and whole calls.

Each function takes ``ax=None`` (a new figure, with constrained layout so no label is cut
when saved) and returns the artists it drew. Every axis says its unit; times are seconds on
the call's timeline, shown as mm:ss past two minutes. Hour-long audio is reduced for display
(min/max envelopes, max-pooled spectrogram columns), so plots stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from telnyx_audio.analysis import Spectrogram, spectrogram
from telnyx_audio.analysis._common import _as_float, _rate

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["plot_spectrogram", "plot_waveform", "plot_call", "plot_spectrograms"]

_MMSS_AFTER_S = 120.0
_DB_LABEL = "power (dB re full scale²/Hz)"


def _axes(ax: Any, figsize: tuple[float, float] = (10, 3)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, layout="constrained")[1]


def _time_axis(ax: Any, duration_s: float) -> None:
    """Seconds, or mm:ss once the audio passes two minutes; the label says which."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if duration_s > _MMSS_AFTER_S:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 1.5, 3, 6, 10]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{int(t // 60):d}:{int(round(t % 60)):02d}"))
        ax.set_xlabel("time (mm:ss)")
    else:
        ax.set_xlabel("time (s)")


def plot_spectrogram(spec: Spectrogram | Any, sr: int | None = None, *, ax: Any = None, track: str | None = None,
                     max_columns: int = 2000, vmin: float | None = None, cmap: str = "magma",
                     colorbar: bool = True) -> Any:
    """Show a spectrogram (or compute one from a track) with a dB colorbar and a title.

    Parameters
    ----------
    spec : Spectrogram or np.ndarray, shape (n,)
        A spectrogram, or a track (a Recording's track carries its rate).
    sr : int, optional
        Sample rate of a plain array.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's when not given.
    track : str, optional
        The track's name for the title (``"inbound"``...).
    max_columns : int
        More frames than this are max-pooled for display (short events stay visible).
    vmin : float, optional
        Lowest dB shown (default: 80 dB below the loudest).
    cmap : str
        A matplotlib colormap name; ``"magma"`` keeps quiet parts dark and reads in grey.
    colorbar : bool
        Draw the colorbar (``image.colorbar``), labelled in dB.

    Returns
    -------
    matplotlib.image.AxesImage
        Its ``colorbar`` attribute holds the colorbar.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> image = plot_spectrogram(np.zeros(8000, np.int16), 8000, track="inbound")
    >>> image.axes.get_title(loc="left"), image.colorbar.ax.get_ylabel()
    ('inbound: spectrogram', 'power (dB re full scale²/Hz)')
    """
    duration = None
    if not isinstance(spec, Spectrogram):
        rate = _rate(sr, spec)
        duration = np.asarray(spec).shape[-1] / rate
        spec = spectrogram(spec, rate)
    ax = _axes(ax)
    db = spec.db
    step = max(1, -(-db.shape[1] // max_columns))
    if step > 1:
        cols = db.shape[1] // step * step
        db = db[:, :cols].reshape(db.shape[0], -1, step).max(axis=2)
    t_end = float(spec.times[-1] + spec.times[0]) if spec.times.size else 0.0  # frame edges, not centres
    top = float(db.max()) if db.size else 0.0
    image = ax.imshow(db, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest",
                      extent=(0.0, t_end, 0.0, float(spec.freqs[-1])), vmin=top - 80 if vmin is None else vmin, vmax=top)
    _time_axis(ax, t_end)
    ax.set_xlim(0.0, t_end if duration is None else duration)  # as plot_waveform's: stacked plots line up
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(f"{track}: spectrogram" if track else "spectrogram", loc="left")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=_DB_LABEL, pad=0.01)
    return image


def plot_waveform(pcm: Any, sr: int | None = None, *, ax: Any = None, scale: str = "full", track: str | None = None,
                  max_points: int = 4000, t0: float = 0.0, floor_dbfs: float = -70.0, **style: Any) -> Any:
    """Plot a track's waveform; long audio is drawn as its min/max envelope.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio (a Recording's track carries its rate).
    sr : int, optional
        Sample rate of a plain array.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's when not given.
    scale : {"full", "dbfs"}
        ``"full"``: amplitude as a fraction of full scale (-1 to 1); ``"dbfs"``: the peak
        level of each display column in dBFS, filled up from the track's own noise floor
        (the 10th percentile of the column peaks, not under ``floor_dbfs``), so steady hiss
        is a thin band at its level and speech stands up from it. The y axis runs from
        ``floor_dbfs`` to +3 dBFS.
    track : str, optional
        The track's name for the title.
    max_points : int
        Display columns at most.
    t0 : float
        Time of the first sample, seconds.
    floor_dbfs : float
        The lowest level drawn with ``scale="dbfs"``.
    **style
        Keyword arguments of :meth:`matplotlib.axes.Axes.fill_between` (``color``,
        ``linewidth``, ``alpha``...); by default color ``"C0"`` and linewidth 0.5.

    Returns
    -------
    matplotlib.collections.PolyCollection
        The filled envelope. The x axis spans the audio exactly (``t0`` to its end), as
        :func:`plot_spectrogram`'s does, so stacked plots line up.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> band = plot_waveform(np.zeros(8000, np.int16), 8000, scale="dbfs")
    >>> band.axes.get_ylabel(), band.axes.get_xlabel()
    ('level (dBFS)', 'time (s)')
    """
    rate = _rate(sr, pcm)
    x = _as_float(pcm)
    if x.ndim != 1:
        raise ValueError(f"plot_waveform takes one track, shape (n,); got {x.shape}")
    if scale not in ("full", "dbfs"):
        raise ValueError(f"scale must be 'full' or 'dbfs', got {scale!r}")
    ax = _axes(ax)
    step = max(1, -(-x.size // max_points))
    cols = x.size // step
    if cols == 0:
        lo = hi = x
        times = t0 + np.arange(x.size) / rate
    else:
        blocks = x[: cols * step].reshape(cols, step)
        lo, hi = blocks.min(axis=1), blocks.max(axis=1)
        times = t0 + (np.arange(cols) * step + step / 2) / rate
    style = {"color": "C0", "linewidth": 0.5} | style
    if scale == "full":
        artist = ax.fill_between(times, lo, hi, **style)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("amplitude (full scale)")
    else:
        peak = 20 * np.log10(np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 10 ** (floor_dbfs / 20)))
        base = max(float(floor_dbfs), float(np.percentile(peak, 10))) if peak.size else float(floor_dbfs)
        artist = ax.fill_between(times, base, np.maximum(peak, base), **style)
        ax.set_ylim(floor_dbfs, 3)
        ax.set_ylabel("level (dBFS)")
    _time_axis(ax, t0 + x.size / rate)
    ax.set_xlim(t0, t0 + x.size / rate)
    if track:
        ax.set_title(f"{track}: waveform", loc="left")
    return artist


def plot_spectrograms(audio: Any, sr: int | None = None, *, ax: Sequence[Any] | None = None,
                      parties: Sequence[str] = ("inbound", "outbound"), vmin: float | None = None) -> dict[str, Any]:
    """Both tracks' spectrograms, one above the other on one time axis, with one dB colorbar.

    Parameters
    ----------
    audio : Capture, Recording, np.ndarray of shape (2, n), or a capture's path
        ``[inbound, outbound]``; a path is read with :func:`~telnyx_audio.read_capture`.
    sr : int, optional
        Sample rate of a plain array.
    ax : pair of Axes, optional
        New ones (sharing the time axis) when not given.
    parties : pair of str
        The tracks' names for the titles, inbound first (``("caller", "agent")``).
    vmin : float, optional
        Lowest dB shown on both (default: 80 dB below the louder track's loudest).

    Returns
    -------
    dict
        ``images`` (two AxesImage), ``colorbar``, ``axes``.
    """
    rate = _rate(sr, audio)
    x = _as_float(audio)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"plot_spectrograms takes two tracks, shape (2, n); got {x.shape}")
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(2, 1, figsize=(12, 5), sharex=True, layout="constrained")[1]
    specs = [spectrogram(x[i], rate) for i in range(2)]
    top = max(float(s.db.max()) if s.db.size else 0.0 for s in specs)
    low = top - 80 if vmin is None else vmin
    images = [plot_spectrogram(s, ax=a, track=p, vmin=low, colorbar=False) for s, a, p in zip(specs, ax, parties)]
    for image in images:
        image.set_clim(low, top)
    colorbar = ax[0].figure.colorbar(images[0], ax=list(ax), label=_DB_LABEL, pad=0.01)
    for a in ax[:-1]:
        a.set_xlabel("")
    return {"images": images, "colorbar": colorbar, "axes": list(ax)}


def _event_times(events: "pd.DataFrame", t0: Any) -> "pd.DataFrame":
    """Webhook rows with ``t_s``: seconds from the audio's start (``t0``, else ``streaming.started``)."""
    import pandas as pd

    if not {"event_type", "occurred_at"} <= set(events.columns):
        raise ValueError("events must be the DataFrame load_webhooks returns (event_type and occurred_at columns)")
    if t0 is None:
        started = events.loc[events["event_type"] == "streaming.started", "occurred_at"]
        if started.empty:
            raise ValueError("events has no streaming.started webhook to line up with the audio: pass events_t0="
                             " (the wall-clock time of the audio's first sample)")
        t0 = started.iloc[0]
    t0 = pd.Timestamp(t0)
    if t0.tzinfo is None:
        t0 = t0.tz_localize("UTC")
    return events.assign(t_s=(events["occurred_at"] - t0).dt.total_seconds())


def _dtmf_labels(digits: list[str], starts: np.ndarray, duration_s: float,
                 width_fraction: float = 0.02) -> list[tuple[str, float]]:
    """One label per run of digits closer together than a label's width (``width_fraction``
    of the time axis): the run's digits joined, at its first digit's time. Digits one label
    apart or more keep their own.

    >>> _dtmf_labels(["1", "2", "9"], np.array([1.0, 1.2, 5.0]), 60.0)
    [('12', 1.0), ('9', 5.0)]
    """
    if not digits:
        return []
    gap = max(duration_s * width_fraction, 1e-9)
    order = np.argsort(starts, kind="stable")
    starts = np.asarray(starts, np.float64)[order]
    new_run = np.concatenate(([True], np.diff(starts) >= gap))
    labels: list[tuple[str, float]] = []
    for digit, start, first in zip((digits[i] for i in order), starts, new_run):
        if first:
            labels.append((digit, float(start)))
        else:
            labels[-1] = (labels[-1][0] + digit, labels[-1][1])
    return labels


def plot_call(audio: Any, sr: int | None = None, *, ax: Sequence[Any] | None = None, analysis: Any = None,
              events: "pd.DataFrame | None" = None, events_t0: Any = None, spectrograms: bool = False,
              parties: Sequence[str] = ("inbound", "outbound"), scale: str = "full", **kwargs: Any) -> dict[str, Any]:
    """Both tracks on one time axis: speech per party, overlaps, DTMF, webhook events and transcripts.

    Parameters
    ----------
    audio : Capture, Recording or np.ndarray, shape (2, n)
        ``[inbound, outbound]``.
    sr : int, optional
        Sample rate of a plain array.
    ax : sequence of Axes, optional
        Two (one per track), or four with ``spectrograms=True``; new ones when not given.
    analysis : CallAnalysis, optional
        From :func:`~telnyx_audio.analyze_call` (computed when not given): speech (DTMF
        excluded), overlaps and in-band DTMF on both tracks.
    events : DataFrame, optional
        What :func:`~telnyx_audio.load_webhooks` returns: each event is a dashed line with
        its type; final ``call.transcription`` lines are written on the track they transcribe.
    events_t0 : datetime or str, optional
        Wall-clock time of the audio's first sample (default: the ``streaming.started``
        webhook's ``occurred_at``).
    spectrograms : bool
        Add both tracks' spectrograms below the waveforms (:func:`plot_spectrograms`).
    parties : pair of str
        The tracks' names in titles and the legend, inbound first (``("caller", "agent")``).
    scale : {"full", "dbfs"}
        Waveform scale (see :func:`plot_waveform`).
    **kwargs
        None is taken: ``dtmf=`` and ``speech=``, taken once, now come in ``analysis``,
        and any keyword here raises :class:`TypeError` saying so.

    Returns
    -------
    dict
        ``figure``, ``axes``, ``waveforms`` (two), ``speech``, ``overlaps``, ``lost`` (hatched
        spans: audio the network lost, per track), ``dtmf`` (texts: digits closer together
        than a label's width are one label, ``"159"``), ``events`` (lines), ``transcript``
        (texts), ``legend``, and with ``spectrograms`` ``images`` and ``colorbar``.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from telnyx_audio.analysis import analyze_call

    if "dtmf" in kwargs or "speech" in kwargs:
        raise TypeError("plot_call takes analysis= (a CallAnalysis) for speech and DTMF")
    if kwargs:
        raise TypeError(f"plot_call got unexpected arguments {sorted(kwargs)}")
    import os

    if isinstance(audio, (str, os.PathLike)):
        from telnyx_audio.read import read_capture

        audio = read_capture(audio)
    rate = _rate(sr, audio)
    x = _as_float(audio)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"plot_call takes two tracks, shape (2, n); got {x.shape}")
    n_axes = 4 if spectrograms else 2
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(n_axes, 1, figsize=(12, 2.2 * n_axes + 0.6), sharex=True, layout="constrained")[1]
    if len(ax) != n_axes:
        raise ValueError(f"plot_call needs {n_axes} axes here, got {len(ax)}")
    result = analysis if analysis is not None else analyze_call(audio if sr is None else x, sr, parties=parties)
    duration = x.shape[1] / rate
    fig = ax[0].figure
    out: dict[str, Any] = {"figure": fig, "axes": list(ax), "waveforms": [], "speech": [], "overlaps": [], "lost": [],
                           "dtmf": [], "events": [], "transcript": []}
    lost = getattr(result, "lost", None)
    colors = {p: f"C{i}" for i, p in enumerate(parties)}
    for i, (name, axis) in enumerate(zip(parties, ax[:2])):
        out["waveforms"].append(plot_waveform(x[i], rate, ax=axis, scale=scale, color=colors[name]))
        axis.set_ylabel(f"{name}\n{axis.get_ylabel()}")
        for start, end in result.speech[name].segments[["start_s", "end_s"]].itertuples(index=False):
            out["speech"].append(axis.axvspan(start, end, color=colors[name], alpha=0.18, linewidth=0))
        for start, end in result.overlaps[["start_s", "end_s"]].itertuples(index=False):
            out["overlaps"].append(axis.axvspan(start, end, color="red", alpha=0.3, linewidth=0))
        if lost is not None and len(lost):
            for start, end in lost.loc[lost["track"] == name, ["start_s", "end_s"]].itertuples(index=False):
                out["lost"].append(axis.axvspan(start, end, facecolor="none", edgecolor="0.35", hatch="////",
                                                linewidth=0.6, zorder=3))
        top = axis.get_ylim()[1]
        digits = result.dtmf.loc[result.dtmf["track"] == name]
        width_px = axis.get_window_extent().width or 1000.0
        label_px = 16 * fig.dpi / 72  # one bold 9 pt digit in its box
        for label, start in _dtmf_labels(digits["digit"].tolist(), digits["start_s"].to_numpy(), duration,
                                         width_fraction=label_px / width_px):
            out["dtmf"].append(axis.annotate(label, (start, top), xytext=(0, -2), textcoords="offset points", va="top",
                                             ha="left", fontsize=9, fontweight="bold", color="black",
                                             bbox={"boxstyle": "round,pad=0.15", "fc": "gold", "ec": "none"}))
        axis.set_xlabel("")
    if events is not None and len(events):
        timed = _event_times(events, events_t0)
        timed = timed[(timed["t_s"] >= 0) & (timed["t_s"] <= duration)]
        if "transcription_data.is_final" in timed.columns:  # interim transcripts repeat the final one's words
            interim = (timed["event_type"] == "call.transcription") & (timed["transcription_data.is_final"] == False)  # noqa: E712
            timed = timed[~interim.fillna(False).astype(bool)]
        text_col = "transcription_data.transcript"
        track_col = "transcription_data.transcription_track"
        for fields in timed.to_dict("records"):  # a few dozen webhooks: a plain loop draws them
            kind, t_s = fields["event_type"], fields["t_s"]
            if kind == "call.transcription" and text_col in timed.columns:
                target = fields.get(track_col) if track_col in timed.columns else None
                axis = ax[parties.index(target)] if target in parties else ax[0]
                out["transcript"].append(axis.annotate(f"“{fields[text_col]}”", (t_s, axis.get_ylim()[0]), xytext=(2, 3),
                                                       textcoords="offset points", fontsize=8, style="italic",
                                                       va="bottom", ha="left", clip_on=True))
                continue
            for axis in ax[:2]:
                out["events"].append(axis.axvline(t_s, color="0.3", linestyle="--", linewidth=0.8))
            label = kind.removeprefix("call.")
            if kind == "call.dtmf.received" and "digit" in timed.columns:
                label += f" {fields['digit']}"
            out["events"].append(ax[0].annotate(label, (t_s, 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2),
                                                textcoords="offset points", fontsize=7, rotation=30, va="bottom",
                                                ha="left", color="0.3"))
    if spectrograms:
        specs = plot_spectrograms(x, rate, ax=ax[2:], parties=parties)
        out["images"], out["colorbar"] = specs["images"], specs["colorbar"]
    _time_axis(ax[-1], duration)
    ax[-1].set_xlim(0, duration)
    handles = [Patch(color=colors[p], alpha=0.35, label=f"{p} speech") for p in parties]
    handles.append(Patch(color="red", alpha=0.4, label="overlap (both speaking)"))
    handles.append(Patch(color="gold", label="DTMF digit (in band)"))
    if out["lost"]:
        handles.append(Patch(facecolor="none", edgecolor="0.35", hatch="////", label="lost audio (network)"))
    if out["events"]:
        handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.8, label="webhook event"))
    out["legend"] = fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8, frameon=False)
    return out

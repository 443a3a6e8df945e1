"""A call's SIP ladder: every message as a row of a DataFrame, and the ladder diagram of it.

:func:`sip_ladder` gives, for a capture read from a packet capture (or its summary), one row
per SIP message: ``time`` (UTC), ``time_s`` (from the first message), ``source``,
``destination``, ``label`` (the method, or the status and reason), ``method``, ``status``,
``cseq``, ``call_id``, ``transport``, ``sdp`` (whether it carried SDP) and ``frame`` (its
frame number in the file). :func:`plot_ladder` draws it: one vertical line per party, one
arrow per message, time downwards.
"""

from __future__ import annotations

from typing import Any

__all__ = ["sip_ladder", "plot_ladder"]

_COLUMNS = ["time", "time_s", "source", "destination", "label", "method", "status", "cseq", "call_id", "transport",
            "sdp", "frame"]


def _rows(source: Any) -> list[dict[str, Any]]:
    report = getattr(source, "report", None)
    if report is not None:
        return list(getattr(report, "ladder", ()) or ())
    if isinstance(source, dict):  # a summary.json
        return list(source.get("ladder") or ())
    return list(source)


def sip_ladder(source: Any):
    """The SIP messages of a call as a DataFrame, in capture order.

    Parameters
    ----------
    source : Capture, dict or list of dict
        A capture read from a pcap/pcapng file, its ``summary()`` / ``summary.json``, or
        ladder rows.

    Returns
    -------
    pandas.DataFrame
        The columns of the module docstring; empty (with them) for a call without SIP.

    Examples
    --------
    >>> rows = [{"time_ns": 1_700_000_000_000_000_000, "frame": 1, "source": "10.0.0.1:5060",
    ...          "destination": "10.0.0.2:5060", "label": "INVITE", "cseq": "1 INVITE", "call_id": "c1",
    ...          "transport": "UDP", "sdp": True},
    ...         {"time_ns": 1_700_000_000_050_000_000, "frame": 2, "source": "10.0.0.2:5060",
    ...          "destination": "10.0.0.1:5060", "label": "200 OK", "cseq": "1 INVITE", "call_id": "c1",
    ...          "transport": "UDP", "sdp": True}]
    >>> df = sip_ladder(rows)
    >>> df[["time_s", "label", "method", "status"]].to_dict("records")
    [{'time_s': 0.0, 'label': 'INVITE', 'method': 'INVITE', 'status': None}, {'time_s': 0.05, 'label': '200 OK', 'method': None, 'status': 200}]
    """
    import pandas as pd

    rows = _rows(source)
    if not rows:
        return pd.DataFrame(columns=_COLUMNS)
    df = pd.DataFrame(rows)
    ns = df["time_ns"].astype("int64")
    df["time"] = pd.to_datetime(ns, unit="ns", utc=True)
    df["time_s"] = (ns - ns.iloc[0]) / 1e9
    first = df["label"].str.split(" ", n=1).str[0]
    is_status = first.str.fullmatch(r"\d{3}")
    df["method"] = first.where(~is_status, None)
    df["status"] = pd.array(first.where(is_status).astype("float").round(), dtype="Int64")
    return df[_COLUMNS].reset_index(drop=True)


def plot_ladder(source: Any, *, ax: Any = None, max_messages: int = 60) -> Any:
    """Draw a call's SIP ladder: parties as vertical lines, messages as arrows, time down.

    Parameters
    ----------
    source : Capture, dict, list of dict or DataFrame
        What :func:`sip_ladder` takes, or its result.
    ax : matplotlib Axes, optional
        Drawn into; a new figure when None.
    max_messages : int
        Messages drawn at most (the first ones): a ladder of hundreds is unreadable.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> rows = [{"time_ns": 0, "frame": 1, "source": "a:5060", "destination": "b:5060", "label": "INVITE",
    ...          "cseq": "1 INVITE", "call_id": "c", "transport": "UDP", "sdp": True}]
    >>> ax = plot_ladder(rows)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['a:5060', 'b:5060']
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    df = source if isinstance(source, pd.DataFrame) else sip_ladder(source)
    df = df.head(max_messages)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * max(len(df), 4) + 1))
    parties: list[str] = []
    for a, b in zip(df["source"], df["destination"]):
        for p in (a, b):
            if p not in parties:
                parties.append(p)
    x = {p: i for i, p in enumerate(parties)}
    for i, p in enumerate(parties):
        ax.axvline(i, color="0.6", lw=1)
    for k, row in enumerate(df.itertuples(index=False)):
        x0, x1 = x[row.source], x[row.destination]
        color = "tab:blue" if row.method else ("tab:green" if (row.status or 0) < 300 else "tab:red")
        ax.annotate("", xy=(x1, k), xytext=(x0, k), arrowprops=dict(arrowstyle="->", color=color, lw=1.2))
        ax.text((x0 + x1) / 2, k - 0.15, f"{row.label}{' (SDP)' if row.sdp else ''}", ha="center", va="bottom",
                fontsize=8, color=color)
        ax.text(-0.45, k, f"{row.time_s:.3f} s", ha="right", va="center", fontsize=7, color="0.3")
    ax.set_xticks(range(len(parties)))
    ax.set_xticklabels(parties, fontsize=8)
    ax.set_xlim(-1.2, max(len(parties) - 1, 1) + 0.5)
    ax.set_ylim(len(df) - 0.5, -1)
    ax.set_yticks([])
    ax.set_title(f"SIP ladder {df['call_id'].iloc[0] if len(df) else ''}".strip(), fontsize=9)
    return ax

"""Argument types of the command line: each mistake names the flag (argparse does) and the value."""

from __future__ import annotations

import argparse
import os

__all__ = ["port_number", "probability", "existing_file"]


def port_number(text: str) -> int:
    """An argparse type: a TCP/UDP port, 0-65535 (0 picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535 (0: any free port), got {text!r}")
    return value


def probability(text: str) -> float:
    """An argparse type: a probability, 0-1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability from 0 to 1 (0.05 is 5 %), got {text!r}")
    return value


def existing_file(text: str) -> str:
    """An argparse type: a file that exists (a WAV or a capture to play)."""
    if not os.path.isfile(text):
        what = "a folder" if os.path.isdir(text) else "no such file"
        raise argparse.ArgumentTypeError(f"{text!r} is {what}: expected a WAV or a capture file")
    return text

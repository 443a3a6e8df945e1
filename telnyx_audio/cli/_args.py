"""Argument types of the command line: each mistake names the flag (argparse does) and the value."""

from __future__ import annotations

import argparse
import os

__all__ = ["port_number", "probability", "existing_file", "positive_int", "positive_float", "non_negative_float",
           "sample_rate"]


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


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number over 0 (seconds, a factor)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number over 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, got {text!r}")
    return value


def sample_rate(text: str) -> int:
    """An argparse type: a sample rate in Hz, 1000-192000."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1000 <= value <= 192000:
        raise argparse.ArgumentTypeError(f"must be a sample rate in Hz, 1000 to 192000 (8000, 16000...), got {text!r}")
    return value

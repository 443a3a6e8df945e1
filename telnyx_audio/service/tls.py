"""TLS contexts for the servers (``certfile``/``keyfile``) and for clients that verify them.

Telnyx connects with ``wss://`` and posts webhooks with ``https://``: a server given a
certificate chain and its key serves TLS 1.2 or newer with the standard library's defaults
(no compression, forward-secret ciphers). A client context verifies the server against the
system's certificate authorities, or against ``cafile`` (a private CA, as in the tests).
"""

from __future__ import annotations

import os
import ssl

__all__ = ["server_context", "client_context", "tls_pair"]


def tls_pair(certfile: str | os.PathLike[str] | None, keyfile: str | os.PathLike[str] | None
             ) -> tuple[str, str | None] | None:
    """Check a ``certfile``/``keyfile`` pair of options; returns it, or None for plain TCP.

    ``keyfile`` may be omitted when ``certfile`` holds the key too; a ``keyfile`` without a
    ``certfile`` is a mistake.

    Examples
    --------
    >>> tls_pair(None, None) is None
    True
    >>> tls_pair(None, "key.pem")
    Traceback (most recent call last):
    ...
    ValueError: keyfile 'key.pem' was given without certfile: give both (or a certfile holding the key)
    """
    if certfile is None:
        if keyfile is not None:
            raise ValueError(f"keyfile {os.fspath(keyfile)!r} was given without certfile: give both"
                             " (or a certfile holding the key)")
        return None
    return os.fspath(certfile), os.fspath(keyfile) if keyfile is not None else None


def server_context(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None = None
                   ) -> ssl.SSLContext:
    """A server-side context from a PEM certificate chain and its private key.

    Parameters
    ----------
    certfile : str or PathLike
        The server's certificate, followed by any intermediate certificates (PEM).
    keyfile : str or PathLike, optional
        Its private key (PEM); omit when ``certfile`` holds it.

    Returns
    -------
    ssl.SSLContext
        For the servers' ``certfile``/``keyfile`` options.

    Raises
    ------
    ValueError
        If a file cannot be read or the key does not match the certificate (the message
        names the file).

    Examples
    --------
    >>> server_context("/nonexistent/cert.pem")
    Traceback (most recent call last):
    ...
    ValueError: cannot load the TLS certificate '/nonexistent/cert.pem' (key None): No such file or directory
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(os.fspath(certfile), os.fspath(keyfile) if keyfile is not None else None)
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot load the TLS certificate {os.fspath(certfile)!r}"
                         f" (key {os.fspath(keyfile) if keyfile is not None else None!r}): {why}") from exc
    return context


def client_context(cafile: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A client context that verifies the server's certificate and host name.

    Parameters
    ----------
    cafile : str or PathLike, optional
        Certificate authorities to trust (PEM) instead of the system's: a private CA.

    Returns
    -------
    ssl.SSLContext
        For ``wss://`` and ``https://`` clients.

    Examples
    --------
    >>> client_context().verify_mode == ssl.CERT_REQUIRED
    True
    """
    context = ssl.create_default_context(cafile=os.fspath(cafile) if cafile is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context

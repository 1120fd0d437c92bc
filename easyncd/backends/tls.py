"""Client TLS for the backends (IMAP, SMTP): certificates verified through
pyopenssl and service-identity, against a configured CA or the platform's."""
from __future__ import annotations

from typing import Any

from twisted.internet import ssl


def client_tls_options(host: str, ca_file: str | None) -> Any:
    """``optionsForClientTLS`` for ``host``, trusting the CA in ``ca_file``
    (PEM) or, when empty, the platform's trust store."""
    if ca_file:
        with open(ca_file, "rb") as handle:
            trust: Any = ssl.Certificate.loadPEM(handle.read())
    else:
        trust = ssl.platformTrust()
    return ssl.optionsForClientTLS(host, trustRoot=trust)

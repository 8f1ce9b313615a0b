# -*- test-case-name: tests.test_tls -*-
"""
TLS on its own port (``ssl { enabled true port 8443 cert ... key ... }``):
the same front door, sources included (ffmpeg's ``-tls 1``), wrapped in
pyOpenSSL through Twisted, TLS 1.2 or newer.
"""

from __future__ import annotations

import re
from typing import Any, List

from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.ssl import Certificate, CertificateOptions, PrivateCertificate, TLSVersion

from ..config import Config
from ..config.files import describe, read_setting_file

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


#: The largest certificate, chain or key file read.
MAX_PEM_FILE = 1024 * 1024


class TLSSetupError(ValueError):
    """The certificate, key or chain cannot be used; the message says which."""


def _read(path: str, what: str) -> bytes:
    try:
        return read_setting_file(path, MAX_PEM_FILE)
    except OSError as e:
        raise TLSSetupError("ssl.%s: cannot read %s: %s" % (what, path, describe(e)))


def certificate_options(config: Config) -> CertificateOptions:
    """Load ``ssl.cert``, ``ssl.key`` and ``ssl.chain`` into Twisted's TLS options."""
    ssl = config.ssl
    cert_pem = _read(ssl.cert, "cert")
    key_pem = _read(ssl.key, "key")
    blocks: List[bytes] = _PEM_CERT.findall(cert_pem)
    if not blocks:
        raise TLSSetupError("ssl.cert: no PEM certificate in %s" % ssl.cert)
    if ssl.chain:
        blocks += _PEM_CERT.findall(_read(ssl.chain, "chain"))
    try:
        leaf = PrivateCertificate.loadPEM(blocks[0] + b"\n" + key_pem)
        chain = [Certificate.loadPEM(block).original for block in blocks[1:]]
    except Exception as e:  # pyOpenSSL raises several kinds
        raise TLSSetupError("ssl: cannot use %s with %s: %s" % (ssl.cert, ssl.key, e))
    minimum = TLSVersion.TLSv1_3 if ssl.min_version == "TLSv1.3" else TLSVersion.TLSv1_2
    return CertificateOptions(privateKey=leaf.privateKey.original, certificate=leaf.original,
                              extraCertChain=chain, raiseMinimumTo=minimum)


class ReloadableTLS:
    """
    The TLS context factory of the TLS port. Each new connection asks it for
    a context, so after :meth:`update` new connections get the new
    certificate while open ones keep theirs.
    """

    def __init__(self, options: CertificateOptions):
        self.options = options

    def update(self, options: CertificateOptions) -> None:
        self.options = options

    def getContext(self) -> Any:
        return self.options.getContext()


def tls_endpoint(reactor: Any, config: Config, context: ReloadableTLS) -> SSL4ServerEndpoint:
    return SSL4ServerEndpoint(reactor, config.ssl.port, context, backlog=1024,
                              interface=config.server.listen)

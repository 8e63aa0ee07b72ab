"""TLS for the hub: `nsp-edge hub --tls-cert FILE --tls-key FILE` (uvicorn's ssl_certfile and
ssl_keyfile). Checked before the hub starts, each refusal naming the fix:

    problem = tls_problem(cert, key)      # None: uvicorn can serve with them

- both options or neither;
- the key file readable or writable by group or others (it is the hub's identity: whoever
  reads it can pose as the hub to every site): `chmod 600 KEY`, owned by the hub's user;
- the certificate and key must load together with Python's ssl (PEM, the key unencrypted, the
  key the certificate's): the error ssl gives, and how to check the pair with openssl.
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path


def tls_problem(cert: Path | None, key: Path | None) -> str | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        return "--tls-cert and --tls-key go together: give both (or neither for plain HTTP " \
               "behind a TLS reverse proxy, deploy/README.md)"
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file() or not os.access(path, os.R_OK):
            return f"{option} {path}: no readable file there (check the path and that the " \
                   "hub's user may read it)"
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        return (f"--tls-key {key}: readable by others (mode {mode:03o}); the key is the hub's "
                f"identity: `chmod 600 {key}` and give it to the hub's user only")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        return (f"--tls-cert {cert} / --tls-key {key}: they do not load together "
                f"({exc.reason or exc}): PEM files, the key unencrypted and the one of this "
                f"certificate (compare `openssl x509 -noout -pubkey -in {cert}` with "
                f"`openssl pkey -pubout -in {key}`)")
    except OSError as exc:
        return f"--tls-cert {cert} / --tls-key {key}: cannot be read ({exc.strerror or exc})"
    return None

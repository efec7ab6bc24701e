"""Connection settings: where the server is and how to reach it."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import InvalidArgumentError

DEFAULT_URL = "valkey://127.0.0.1:6379"
PLAIN_SCHEMES = ("valkey", "redis")
TLS_SCHEMES = ("valkeys", "rediss")


@dataclass(frozen=True, init=False)
class Connection:
    """How to reach a Valkey server or cluster.

    Build it from a URL (``valkey://[user[:password]@]host[:port][/db][?cluster=true]``,
    ``valkeys://``/``rediss://`` for TLS) or from keyword arguments; keywords override
    what the URL says. The password never appears in ``repr()``.

    ``tls_ca_file``: a PEM file of the certificate authorities to trust (for a server whose
    certificate a private CA signed); it turns TLS on. Without it, the system's roots are used.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    cluster: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    request_timeout: float = 5.0
    tls_ca_file: str | None = None

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        cluster: bool = False,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        request_timeout: float = 5.0,
        tls_ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        parsed = _parse_url(url) if url is not None else {}
        values = {
            "host": host or parsed.get("host") or "127.0.0.1",
            "port": port if port is not None else parsed.get("port") or 6379,
            "cluster": cluster or bool(parsed.get("cluster")),
            "tls": tls or bool(parsed.get("tls")),
            "username": username if username is not None else parsed.get("username"),
            "password": password if password is not None else parsed.get("password"),
            "db": db or parsed.get("db") or 0,
            "request_timeout": request_timeout,
            "tls_ca_file": None,
        }
        if tls_ca_file is not None:
            if not isinstance(tls_ca_file, (str, os.PathLike)) or not os.path.isfile(tls_ca_file):
                raise InvalidArgumentError(f"tls_ca_file must be an existing file, got {tls_ca_file!r}")
            values["tls_ca_file"], values["tls"] = os.fspath(tls_ca_file), True
        if not isinstance(values["port"], int) or not 0 < values["port"] < 65536:
            raise InvalidArgumentError(f"port must be 1..65535, got {values['port']!r}")
        if not isinstance(values["db"], int) or values["db"] < 0:
            raise InvalidArgumentError(f"db must be a non-negative int, got {values['db']!r}")
        if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) or request_timeout <= 0:
            raise InvalidArgumentError("request_timeout must be a positive number of seconds")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def url(self) -> str:
        """The connection as a URL, with the password masked."""
        scheme = "valkeys" if self.tls else "valkey"
        auth = ""
        if self.username or self.password:
            auth = (self.username or "") + (":***" if self.password else "") + "@"
        query = "?cluster=true" if self.cluster else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}{query}"

    def __str__(self) -> str:
        return self.url

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings for plain sockets (health checks, the heartbeat thread)."""
        return ssl.create_default_context(cafile=self.tls_ca_file)

    def tls_ca_pem(self) -> bytes | None:
        """The trusted CA certificates given by ``tls_ca_file``, or None for the system's."""
        if self.tls_ca_file is None:
            return None
        with open(self.tls_ca_file, "rb") as f:
            return f.read()


def _parse_url(url: str) -> dict[str, object]:
    if not isinstance(url, str):
        raise InvalidArgumentError("connection URL must be a str")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidArgumentError("malformed connection URL") from None
    scheme = parts.scheme.lower()
    if scheme not in PLAIN_SCHEMES + TLS_SCHEMES:
        raise InvalidArgumentError(
            f"unsupported URL scheme {scheme!r}: use valkey://, redis://, valkeys:// or rediss://"
        )
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise InvalidArgumentError("the URL path must be a database number")
    query = parse_qs(parts.query)
    cluster = query.get("cluster", ["false"])[-1].lower() in ("1", "true", "yes")
    return {
        "host": parts.hostname,
        "port": port,
        "tls": scheme in TLS_SCHEMES,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "db": int(path) if path else 0,
        "cluster": cluster,
    }


def resolve(connection: Connection | str | None) -> Connection:
    """Turns what a component was given into a Connection (None: ``GLIDEMQ_URL`` or the default)."""
    if isinstance(connection, Connection):
        return connection
    if connection is None:
        return Connection(os.environ.get("GLIDEMQ_URL") or DEFAULT_URL)
    if isinstance(connection, str):
        return Connection(connection)
    raise InvalidArgumentError("connection must be a Connection, a URL string or None")

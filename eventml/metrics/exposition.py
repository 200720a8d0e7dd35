"""``/metrics`` of one Prometheus registry over HTTP, in a daemon thread.

Examples
--------
>>> from prometheus_client import CollectorRegistry, Counter
>>> import urllib.request
>>> registry = CollectorRegistry()
>>> Counter("demo_events", "events seen", registry=registry).inc(3)
>>> server = MetricsServer(registry, port=0)
>>> text = urllib.request.urlopen(server.url).read().decode()
>>> print([line for line in text.splitlines() if line.startswith("demo_events_total")])
['demo_events_total 3.0']
>>> server.close()
"""

from __future__ import annotations

from typing import Any

from eventml.errors import ConfigError
from eventml.validation import int_in_range

__all__ = ["MetricsServer"]


class MetricsServer:
    """Serves ``registry`` at ``http://<host>:<port>/metrics`` (prometheus-client's WSGI server) until
    :meth:`close`.

    Parameters
    ----------
    registry
        A ``prometheus_client.CollectorRegistry``.
    port
        TCP port, 0 for a free one (see :attr:`port` and :attr:`url`).
    host
        Address to bind: ``127.0.0.1`` (this machine only) unless told otherwise.

    Raises
    ------
    ConfigError
        If ``port`` is not a port number, or nothing can listen there (e.g. it is taken).
    """

    def __init__(self, registry: Any, port: int, host: str = "127.0.0.1"):
        from prometheus_client import start_http_server

        port = int_in_range("metrics_port", port, 0, 65535)
        try:
            self._httpd, self._thread = start_http_server(port, host, registry)
        except OSError as exc:
            raise ConfigError(f"metrics_port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                              "pick another port, or 0 for a free one") from None
        self.host, self.port = host, self._httpd.server_port

    @property
    def url(self) -> str:
        """Where Prometheus scrapes."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r})"

"""Serve a WSGI app over real HTTP on a background thread (tests and the demo)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class RunningServer:
    """A WSGI app listening on ``url`` until :meth:`stop` is called."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        """Stop accepting requests and wait for the serving thread to end."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) in a daemon thread.

    Requests are served on their own threads, so a handler that holds a request
    open (fault injection) does not block the others.
    """
    server = make_server(host, port, app, threaded=True)
    # A short poll interval makes stop() quick (the default waits up to 0.5 s).
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"wsgi:{server.port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(url=f"http://{host}:{server.port}", server=server, thread=thread)

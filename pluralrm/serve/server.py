"""Running the reward server: bind a loopback socket, serve with uvicorn, drain on SIGTERM.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets every request in flight
finish (up to ``drain_timeout_s``), then the app's lifespan drains the micro-batcher; the
process then exits with status 0.
"""
from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from pluralrm.errors import ConfigError
from pluralrm.serve.app import ServeConfig, create_app
from pluralrm.serve.auth import check_exposure
from pluralrm.serve.observe import access_log

KEEP_ALIVE_S = 75


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    model: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig = ServeConfig(),
    name: str = "",
    log_level: str = "warning",
    on_listen: Callable[[str], None] | None = None,
    insecure: bool = False,
    log_requests: bool = True,
) -> str | None:
    """Serves ``model`` until SIGTERM/SIGINT. Returns the name of the signal that stopped it.

    Args:
      model: a RewardModel; host/port: where to listen (127.0.0.1 by default: expose the
        server beyond this machine only deliberately); config: :class:`ServeConfig`;
      on_listen: called with the URL once the socket listens (port 0 resolved).
      insecure: allow a non-loopback ``host`` without ``config.api_key`` (refused otherwise).
      log_requests: one line per request on stderr (method, path, status, latency, sizes; no texts).
    """
    import uvicorn

    check_exposure(host, "key" if config.api_key is not None else None, insecure)
    if log_requests and not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s pluralrm serve: %(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}"
    app = create_app(model, config, name)
    # Keep idle connections longer than clients do (httpx 5 s, aiohttp 15 s, as OpenRLHF uses): when
    # the server closes first, a client reusing the connection at that moment gets a reset instead
    # of an answer (uvicorn's default is 5 s).
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False,
                                           timeout_keep_alive=KEEP_ALIVE_S,
                                           timeout_graceful_shutdown=config.drain_timeout_s))
    stopped_by: list[str] = []

    def note(sig: int, frame: Any) -> None:  # uvicorn re-raises the signal it handled after shutdown
        stopped_by.append(signal.Signals(sig).name)

    previous = {s: signal.signal(s, note) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_listen is not None:
            on_listen(url)
        server.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    return stopped_by[0] if stopped_by else None


__all__ = ["bind_socket", "serve"]

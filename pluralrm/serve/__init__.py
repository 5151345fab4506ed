"""HTTP reward server over :mod:`pluralrm.score` (optional extra ``pluralrm[serve]``).

``pluralrm serve --checkpoint RUN`` or :func:`serve`; the app itself is :func:`create_app`
(routes in :mod:`pluralrm.serve.app`). Concurrent requests are scored together in one batched
model call (:mod:`pluralrm.serve.batcher`), in a worker thread so the event loop stays
responsive. Listens on 127.0.0.1 unless told otherwise.
"""
try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"the reward server needs FastAPI and uvicorn ({e.name} is not installed): "
        "install the optional extra with  pip install 'pluralrm[serve]'"
    ) from e

from pluralrm.serve.app import ServeConfig, create_app
from pluralrm.serve.requests import Limits
from pluralrm.serve.server import serve

__all__ = ["Limits", "ServeConfig", "create_app", "serve"]

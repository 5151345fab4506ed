"""In-process reward servers for tests: the app under FastAPI's TestClient (lifespan run)."""
import sys
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "score"))
from score_helpers import PROMPTS, RESPONSES, SCHEMA, tiny_model  # noqa: E402,F401

from pluralrm.serve import ServeConfig, create_app  # noqa: E402


@contextmanager
def client(model, **config):
    """A TestClient of ``create_app(model, ServeConfig(**config))`` with its lifespan running."""
    config.setdefault("warmup", False)
    with TestClient(create_app(model, ServeConfig(**config))) as c:
        yield c

"""``pluralrm serve --checkpoint RUN [--host 127.0.0.1] [--port 8000]``: the HTTP reward server.

Needs the optional extra ``pluralrm[serve]`` (FastAPI, uvicorn). Routes: POST /score,
POST /compare, GET /groups, GET /health (see ``pluralrm.serve.app``). Binds 127.0.0.1 by
default; SIGTERM drains the requests in flight and exits 0.
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="RUN",
                   help="a run directory of `pluralrm train` or a saved model directory")
    p.add_argument("--step", default="best", help="with a run directory: best (default), latest or a step number")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes the server)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=int, default=256, help="rows per batched model call (default 256)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to share its model call (default 5)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body limit (413 above; default 1 MiB)")
    p.add_argument("--max-items", type=int, default=1024, help="rows per request (413 above; default 1024)")
    p.add_argument("--max-text-chars", type=int, default=20_000, help="characters per text (422 above; default 20000)")
    p.add_argument("--unseen", choices=["pooled", "error", "nearest"], default="pooled",
                   help="a group value the model never saw: shared reward with a warning in the answer (default), "
                        "a 422, or the most similar known value")
    p.add_argument("--no-warmup", action="store_true", help="do not compile the model before listening")
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="seconds in-flight requests may take to finish after SIGTERM (default 30)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def run(args: argparse.Namespace) -> int:
    try:
        from pluralrm.serve import Limits, ServeConfig, serve
    except ImportError as e:
        from pluralrm.errors import ConfigError

        raise ConfigError(str(e)) from None
    from pluralrm.models.reward_model import RewardModel

    config = ServeConfig(
        limits=Limits(args.max_body_bytes, args.max_items, args.max_text_chars),
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, fallback=args.unseen,
        warmup=not args.no_warmup, drain_timeout_s=args.drain_timeout,
    )
    model = RewardModel.load(args.checkpoint, args.step)
    signal_name = serve(model, args.host, args.port, config, name=str(args.checkpoint), log_level=args.log_level,
                        on_listen=lambda url: print(f"pluralrm serve: listening on {url}", flush=True))
    print(f"pluralrm serve: stopped{f' by {signal_name}' if signal_name else ''}; requests in flight were drained",
          flush=True)
    return 0

"""``pluralrm serve --checkpoint RUN [--host 127.0.0.1] [--port 8000]``: the HTTP reward server.

Needs the optional extra ``pluralrm[serve]`` (FastAPI, uvicorn). Routes: POST /score,
POST /compare, POST /get_reward (OpenRLHF), GET /groups, /health, /healthz, /readyz, /metrics
(see ``pluralrm.serve.app`` and docs/http_api.md). Binds 127.0.0.1 by default; another address
needs --api-key-file (or --insecure). SIGTERM drains the requests in flight and exits 0.
"""
from __future__ import annotations

import argparse

from pluralrm.cli.model_options import add_checkpoint_arguments

EPILOG = """\
routes (JSON in, JSON out; full reference with every field, limit and error: docs/http_api.md):
  POST /score        {"prompts": [...], "responses": [...], "groups": "country=NG"}  ->  {"scores": [...]}
                     {"prompts": [...], "responses": [...], "all_groups": true, "aggregate": "worst"}
  POST /compare      {"prompt": "...", "a": "...", "b": "..."}  ->  {"groups": [...], "p_a_over_b": [...]}
  POST /get_reward   OpenRLHF's --remote_rm_url protocol: {"query": [...], "prompts": [...], "labels": [...]}
                     ->  {"rewards": [...], "scores": [...], "extra_logs": {...}}
  GET  /groups  /health  /healthz (liveness)  /readyz (readiness)  /metrics (Prometheus)

examples:
  pluralrm serve --checkpoint runs/x --port 8000
  curl -s localhost:8000/score -H 'Content-Type: application/json' \\
       -d '{"prompts": ["Hi"], "responses": ["Hello!"], "groups": "country=NG"}'
  curl -s localhost:8000/compare -H 'Content-Type: application/json' \\
       -d '{"prompt": "Hi", "a": "Hello!", "b": "Go away."}'
  # another machine may connect only with a key (clients send 'Authorization: Bearer KEY'):
  python -c 'import secrets; print(secrets.token_urlsafe(32))' > key.txt
  pluralrm serve --checkpoint runs/x --host 0.0.0.0 --api-key-file key.txt --reward-groups all --reward-aggregate worst
  curl -s HOST:8000/get_reward -H "Authorization: Bearer $(cat key.txt)" -H 'Content-Type: application/json' \\
       -d '{"query": ["Hi Hello!"], "prompts": ["Hi "]}'

JSON bodies need 'Content-Type: application/json' or no Content-Type at all (curl -d alone sends a
form type, which is refused with a message saying so).

errors: {"error": "<field>: <what is wrong>"}; 401 without the key, 413 over a limit, 422 for a
malformed field (named), 503 while shutting down.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    add_checkpoint_arguments(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; any other address needs "
                        "--api-key-file or --insecure)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--api-key-file", metavar="FILE",
                   help="file holding the API key clients must send ('Authorization: Bearer KEY' or 'X-API-Key: KEY'); "
                        "all routes but /healthz and /readyz need it")
    p.add_argument("--insecure", action="store_true",
                   help="listen on a non-loopback --host without an API key (anyone who can reach it may use it)")
    p.add_argument("--max-batch", type=int, default=256, help="rows per batched model call (default 256)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to share its model call (default 5)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body limit (413 above; default 1 MiB)")
    p.add_argument("--max-items", type=int, default=1024, help="rows per request (413 above; default 1024)")
    p.add_argument("--max-text-chars", type=int, default=20_000, help="characters per text (422 above; default 20000)")
    p.add_argument("--unseen", choices=["pooled", "error", "nearest"], default="pooled",
                   help="a group value the model never saw: shared reward with a warning in the answer (default), "
                        "a 422, or the most similar known value")
    rlhf = p.add_argument_group("POST /get_reward (OpenRLHF's remote reward model)")
    rlhf.add_argument("--reward-groups", default=None, metavar="SPEC",
                      help="whose reward: a group spec (country=NG), 'all' (every group, combined by "
                           "--reward-aggregate) or omitted (the shared reward)")
    rlhf.add_argument("--reward-aggregate", default="mean", metavar="RULE",
                      help="rule over groups for 'all': mean, weighted, worst, quantile, softmin, borda, majority "
                           "(default mean)")
    rlhf.add_argument("--reward-weights", default=None, metavar="W",
                      help="group weights for the rule: 'population' or comma-separated numbers, one per group")
    rlhf.add_argument("--reward-q", type=float, default=None, help="the quantile rule's q")
    rlhf.add_argument("--reward-temperature", type=float, default=None, help="the softmin rule's temperature")
    rlhf.add_argument("--groups-from-labels", nargs="?", const="", default=None, metavar="ATTRIBUTE",
                      help="read each row's group from OpenRLHF's labels (--label_key): a spec like country=NG, "
                           "'all', or with ATTRIBUTE a bare value of it")
    rlhf.add_argument("--strip-text", action="append", default=[], metavar="TEXT",
                      help="text removed from the end of each response (e.g. '</s>'); may repeat")
    p.add_argument("--no-warmup", action="store_true", help="do not compile the model before listening")
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="seconds in-flight requests may take to finish after SIGTERM (default 30)")
    p.add_argument("--no-request-log", action="store_true",
                   help="do not log one line per request (method, path, status, latency, sizes; never texts)")
    p.add_argument("--log-request-bodies", action="store_true",
                   help="log request bodies too (they hold users' texts: for debugging on a private machine only)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def _reward_spec(args: argparse.Namespace):
    from pluralrm.errors import ConfigError
    from pluralrm.integrations.rewards import RewardSpec

    weights = args.reward_weights
    if weights is not None and weights != "population":
        try:
            weights = tuple(float(w) for w in weights.split(","))
        except ValueError:
            raise ConfigError(f"--reward-weights: 'population' or comma-separated numbers, got {weights!r}") from None
    params = {k: v for k, v in (("q", args.reward_q), ("temperature", args.reward_temperature)) if v is not None}
    try:
        return RewardSpec(groups=args.reward_groups, aggregate=args.reward_aggregate, weights=weights,
                          params=params, fallback=args.unseen)
    except ConfigError as e:
        raise ConfigError(f"--reward-*: {e}") from None


def run(args: argparse.Namespace) -> int:
    try:
        from pluralrm.serve import Limits, ServeConfig, serve
        from pluralrm.serve.auth import check_exposure, read_api_key
        from pluralrm.serve.openrlhf import RlhfConfig
    except ImportError as e:
        from pluralrm.errors import ConfigError

        raise ConfigError(str(e)) from None
    from pluralrm.models.reward_model import RewardModel

    # Refuse an unsafe exposure or a bad key file before the (slow) model load.
    check_exposure(args.host, args.api_key_file, args.insecure)
    api_key = read_api_key(args.api_key_file) if args.api_key_file else None
    rlhf = RlhfConfig(reward=_reward_spec(args), groups_from_labels=args.groups_from_labels is not None,
                      label_attribute=args.groups_from_labels or None, strip_texts=tuple(args.strip_text))
    config = ServeConfig(
        limits=Limits(args.max_body_bytes, args.max_items, args.max_text_chars),
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, fallback=args.unseen,
        warmup=not args.no_warmup, drain_timeout_s=args.drain_timeout, api_key=api_key,
        log_bodies=args.log_request_bodies, rlhf=rlhf,
    )
    model = RewardModel.load(args.checkpoint, args.step)
    signal_name = serve(model, args.host, args.port, config, name=str(args.checkpoint), log_level=args.log_level,
                        on_listen=lambda url: print(f"pluralrm serve: listening on {url}", flush=True),
                        insecure=args.insecure, log_requests=not args.no_request_log)
    print(f"pluralrm serve: stopped{f' by {signal_name}' if signal_name else ''}; requests in flight were drained",
          flush=True)
    return 0

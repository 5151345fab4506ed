"""Fuzzing every loader and the reward server's request bodies (hypothesis, seeded).

Contract under test: any input either loads, or is refused with pluralrm's own error
(``DataError``, ``ConfigError``, ``CheckpointError``; a 413/422 answer for the server) that
names where the problem is. No other exception escapes, and the server never answers 5xx.

Each target runs a fixed number of generated cases (``derandomize=True``: the same cases on
every run); ``CASES`` sums to more than 10,000 (docs/reliability.md, "fuzz cases").
"""
import gzip
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from pluralrm.data.badrows import DataWarning
from pluralrm.errors import CheckpointError, ConfigError, DataError

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzz")]

# target -> generated cases per run; PLURALRM_FUZZ_SCALE=10 fuzzes ten times longer
_SCALE = float(os.environ.get("PLURALRM_FUZZ_SCALE", "1"))
CASES = {target: max(1, int(n * _SCALE)) for target, n in
         {"rows": 2000, "bytes": 2000, "adapters": 1000, "configs": 1500, "metadata": 1000, "server": 3000}.items()}


def fuzz(target: str, **strategies):
    """Runs the decorated check on ``CASES[target]`` generated cases and asserts it saw them all
    (hypothesis stops early when a strategy's space is exhausted: that would inflate the count)."""

    def wrap(check):
        seen = {"n": 0}

        @settings(max_examples=CASES[target], deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(**strategies)
        def run(**kw):
            seen["n"] += 1
            check(**kw)

        def test():
            run()
            assert seen["n"] >= CASES[target], f"{target}: only {seen['n']} cases generated"
            print(f"\nfuzz {target}: {seen['n']} cases, 0 uncaught exceptions")

        test.__name__ = check.__name__
        test.__doc__ = check.__doc__
        return test

    return wrap


SCRATCH = Path(tempfile.mkdtemp(prefix="pluralrm-fuzz-"))

# ---------------------------------------------------------------------- strategies
texts = st.text(alphabet="ab √ü\t\n,\"{}", max_size=5)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(), texts,
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, 0.5, 1.0, -1, 2.5]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(texts, inner, max_size=3)), max_leaves=6)
KEYS = ("prompt", "chosen", "rejected", "label", "weight", "annotator_id", "country")
good_row = st.fixed_dictionaries({"prompt": st.sampled_from(["p", "q"]), "chosen": st.just("a"),
                                  "rejected": st.just("b"), "country": st.sampled_from(["NG", "US", ""])})
rows = st.one_of(
    good_row,
    good_row.flatmap(lambda r: st.dictionaries(st.sampled_from(KEYS + ("extra",)), json_values, max_size=2)
                     .map(lambda extra: {**r, **extra})),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=len(KEYS)),
    json_values,  # not even an object
)
tables = st.lists(rows, min_size=0, max_size=5)


def _assert_names_where(e: DataError, path: Path | None) -> None:
    if path is not None:
        assert e.file is not None and Path(e.file).name.startswith(path.name.split(".")[0]), str(e)
    whole_input = e.reason.startswith(("has no rows", "must be", "in-memory", "every one of"))  # about the input as a whole
    assert e.field is not None or e.row is not None or path is not None or whole_input, f"no field, row or file: {e}"


def _load_or_refuse(path_or_rows, path: Path | None, **kw):
    from pluralrm.data.io import load

    try:
        load(path_or_rows, groups=["country"], **kw)
    except DataError as e:
        _assert_names_where(e, path)
    except DataWarning:  # skipped rows are reported as a warning (an error under pytest)
        assert kw.get("on_bad_row") == "skip"


def _write_rows(path: Path, table: list) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in table))
    elif path.suffix == ".json":
        path.write_text(json.dumps(table))
    else:  # CSV: flatten each value to its JSON text (a cell is a string)
        keys = sorted({k for r in table if isinstance(r, dict) for k in r})
        lines = [",".join(keys)] + [",".join(json.dumps(r.get(k) if isinstance(r, dict) else r) for k in keys)
                                    for r in table]
        path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------- data loaders
@fuzz("rows", table=tables, suffix=st.sampled_from([".jsonl", ".json", ".csv", None]),
      policy=st.sampled_from(["error", "skip"]))
def test_fuzz_rows_in_every_format(table, suffix, policy):
    """Arbitrary records (wrong types, missing fields, nested values, NaN, non-objects) through
    ``load`` from memory, JSONL, JSON and CSV, with both bad-row policies."""
    if suffix is None:
        _load_or_refuse(table, None, on_bad_row=policy)
        return
    path = SCRATCH / f"rows{suffix}"
    _write_rows(path, table)
    _load_or_refuse(path, path, on_bad_row=policy)


def _valid_files() -> dict[str, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b", "label": 1.0, "country": "NG"} for i in range(4)]
    jsonl = "".join(json.dumps(r) + "\n" for r in records).encode()
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buffer)
    csv = ("prompt,chosen,rejected,label,country\n" + "".join(f"p{i},a,b,1.0,NG\n" for i in range(4))).encode()
    return {".jsonl": jsonl, ".json": json.dumps(records).encode(), ".csv": csv, ".parquet": buffer.getvalue(),
            ".jsonl.gz": gzip.compress(jsonl)}


VALID_FILES = _valid_files()
mutations = st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]), st.integers(0, 10**6),
                               st.binary(min_size=1, max_size=4)), min_size=1, max_size=4)


def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op, where, payload in ops:
        i = where % (len(buf) + 1)
        if op == "flip" and buf:
            buf[i % len(buf)] ^= payload[0] or 1
        elif op == "cut":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = payload
        elif op == "delete":
            del buf[i:i + len(payload)]
    return bytes(buf)


@fuzz("bytes", suffix=st.sampled_from(sorted(VALID_FILES)), ops=mutations, policy=st.sampled_from(["error", "skip"]))
def test_fuzz_corrupted_files(suffix, ops, policy):
    """Valid JSONL/JSON/CSV/Parquet/gzip files with flipped, cut, inserted and deleted bytes."""
    path = SCRATCH / f"bytes{suffix}"
    path.write_bytes(_mutate(VALID_FILES[suffix], ops))
    _load_or_refuse(path, path, on_bad_row=policy)


@fuzz("adapters", adapter=st.sampled_from(["hh_rlhf", "dices", "popquorn", "prism"]),
      table=st.lists(st.one_of(
          st.dictionaries(st.sampled_from(["chosen", "rejected", "item_id", "response", "rater_id", "Q_overall",
                                           "context", "rater_gender", "comment_id", "text", "user_id",
                                           "offensiveness", "gender", "conversation_id", "turn", "within_turn_id",
                                           "if_chosen", "model_response", "user_prompt", "score"]),
                          json_values, max_size=8),
          st.fixed_dictionaries({"chosen": st.sampled_from(["\n\nHuman: hi\n\nAssistant: yes", "x", ""]),
                                 "rejected": st.sampled_from(["\n\nHuman: hi\n\nAssistant: no", "\n\nAssistant:"])})),
          min_size=0, max_size=5))
def test_fuzz_dataset_adapters(adapter, table):
    """HH-RLHF, DICES, POPQUORN and PRISM adapters on arbitrary records."""
    from pluralrm.data import adapters

    path = SCRATCH / f"adapter-{adapter}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in table))
    try:
        getattr(adapters, adapter)(path)
    except DataError as e:
        _assert_names_where(e, path)


# ---------------------------------------------------------------------- configs and metadata
CONFIG_KEYS = ["train.steps", "train.batch_size", "optimizer.lr", "model.head.type", "model.backbone.num_buckets",
               "model.backbone.hidden_dims", "loss.type", "checkpoint.every", "data.memory_map", "mesh.data",
               "eval.every", "trian.steps", "model.head", "", "model..head", "optimizer.lr.x"]


@fuzz("configs", overrides=st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), st.one_of(texts, st.sampled_from(
    ["1", "-1", "0", "1e-3", "nan", "inf", "[1,2]", "[", "{a: 1}", "true", "null", "pooled", "mixture", "!!python/object:os.system ''"]))),
    max_size=3), yaml_doc=st.one_of(st.none(), json_values, st.dictionaries(st.sampled_from(["train", "model", "optimizer", "x"]),
                                                                      json_values, max_size=3)))
def test_fuzz_training_configs(overrides, yaml_doc):
    """YAML documents and ``--set key=value`` overrides of the training config."""
    from pluralrm.train import load_config

    path = None
    if yaml_doc is not None:
        import yaml

        path = SCRATCH / "config.yaml"
        path.write_text(yaml.safe_dump(yaml_doc))
    try:
        load_config(str(path) if path else None, [f"{k}={v}" for k, v in overrides])
    except ConfigError as e:
        # the message names what was wrong: an override's key (or a part of it: the unknown
        # section), a key of the YAML document, or the file itself (a document that is not a mapping)
        names = ({k for k, _ in overrides} | {part for k, _ in overrides for part in k.split(".")}
                 | {f"{k}={v}" for k, v in overrides} | _keys(yaml_doc))
        if path is not None:
            names.add(str(path))
        message = str(e)
        assert any(repr(n) in message or (n.strip() and n in message) for n in names), \
            f"names no field: {message!r} ({names})"


def _keys(doc) -> set[str]:
    """Every mapping key of a JSON-like document, at any depth."""
    if isinstance(doc, dict):
        return {str(k) for k in doc} | {k for v in doc.values() for k in _keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in _keys(v)}
    return set()


def _model_dir() -> Path:
    sys.path.insert(0, str(Path(__file__).parent / "score"))
    from score_helpers import saved_model

    return saved_model(SCRATCH / "model")


METADATA_FILES = ["model.json", "schema.json", "annotators.json"]


@fuzz("metadata", name=st.sampled_from(METADATA_FILES), content=st.one_of(
    json_values.map(json.dumps),
    st.tuples(st.sampled_from(["format", "version", "config", "featurizer", "temperatures", "attributes",
                               "vocabularies", "groups", "group_counts"]), json_values).map(lambda kv: kv),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1"))))
def test_fuzz_model_metadata(name, content):
    """A saved model's ``model.json``, ``schema.json`` and ``annotators.json`` replaced by
    arbitrary JSON, a valid file with one key replaced, or garbage bytes."""
    from pluralrm.models import RewardModel

    source = _model_dir()
    target = SCRATCH / "broken-model"
    if not target.exists():
        import shutil

        shutil.copytree(source, target)
    for f in METADATA_FILES:
        (target / f).write_bytes((source / f).read_bytes())
    if isinstance(content, tuple):
        key, value = content
        doc = json.loads((source / name).read_text())
        if isinstance(doc, dict):
            doc[key] = value
        else:
            doc = [value]
        content = json.dumps(doc)
    (target / name).write_text(content, encoding="utf-8", errors="surrogatepass")
    try:
        model = RewardModel.load(target)
    except (CheckpointError, DataError, ConfigError) as e:
        assert name in str(e) or str(target) in str(e), f"the error names neither {name} nor the directory: {e}"
        return
    scores = model.score(["p"], ["r"])  # what loads must work
    assert np.isfinite(scores).all()


# ---------------------------------------------------------------------- the server's request bodies
def _client():
    from fastapi.testclient import TestClient

    from pluralrm.models import RewardModel
    from pluralrm.serve import ServeConfig, create_app
    from pluralrm.serve.requests import Limits

    if "client" not in _SERVER:
        model = RewardModel.load(_model_dir())
        config = ServeConfig(limits=Limits(max_body_bytes=4000, max_items=16, max_text_chars=50), max_wait_ms=0.0)
        client = TestClient(create_app(model, config))
        client.__enter__()  # runs the lifespan: the micro-batcher and its warm-up
        _SERVER["client"] = client
    return _SERVER["client"]


_SERVER: dict = {}
specs = st.one_of(st.sampled_from(["country=NG", "country=US,language=en", "country=FR", "religion=x", "", "=",
                                   "country=NG,country=US", "country"]),
                  st.dictionaries(st.sampled_from(["country", "language", "x"]), st.sampled_from(["NG", "en", "", "zz"]),
                                  max_size=2))
score_fields = {
    "prompts": st.one_of(st.lists(texts, max_size=4), json_values),
    "responses": st.one_of(st.lists(texts, max_size=4), json_values),
    "groups": st.one_of(specs, st.lists(specs, max_size=4), json_values),
    "all_groups": st.one_of(st.booleans(), json_values),
    "aggregate": st.one_of(st.sampled_from(["mean", "worst", "quantile", "weighted", "softmin", "plurality"]), json_values),
    "weights": st.one_of(st.just("population"), st.lists(st.floats(allow_nan=True), max_size=8), json_values),
    "normalize": st.one_of(st.sampled_from(["none", "zscore", "rank", "minmax"]), json_values),
    "q": st.one_of(st.floats(allow_nan=True), json_values),
    "temperature": st.one_of(st.floats(allow_nan=True), json_values),
    "colour": json_values,
}
compare_fields = {"prompt": st.one_of(texts, json_values), "a": st.one_of(texts, json_values),
                  "b": st.one_of(texts, json_values), "groups": st.one_of(specs, st.lists(specs, max_size=3), json_values),
                  "x": json_values}


def _body(fields: dict):
    keys = st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields))
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: fields[k] for k in ks}))


bodies = st.one_of(
    st.tuples(st.just("/score"), _body(score_fields)),
    st.tuples(st.just("/score"), st.fixed_dictionaries({"prompts": st.lists(texts, min_size=1, max_size=3)}).flatmap(
        lambda b: _body({k: v for k, v in score_fields.items() if k != "prompts"}).map(
            lambda rest: {**rest, **b, "responses": rest.get("responses", ["r"] * len(b["prompts"]))}))),
    st.tuples(st.just("/compare"), _body(compare_fields)),
    st.tuples(st.sampled_from(["/score", "/compare"]), st.binary(max_size=40)),
    st.tuples(st.sampled_from(["/score", "/compare"]), json_values),
)


@fuzz("server", route_body=bodies)
def test_fuzz_server_request_bodies(route_body):
    """Generated /score and /compare bodies (valid, malformed fields, wrong types, non-JSON
    bytes, non-objects) against the app: 200 with one answer per row, or a 400/413/422 whose error
    names the field; never a 5xx."""
    route, body = route_body
    client = _client()
    if isinstance(body, bytes):
        answer = client.post(route, content=body, headers={"content-type": "application/json"})
    else:
        answer = client.post(route, content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"})
    assert answer.status_code in (200, 400, 413, 422), (answer.status_code, answer.text)
    payload = answer.json()
    if answer.status_code == 200:
        if route == "/score":
            n = len(body["prompts"])
            scores = payload["scores"]
            assert len(scores) == n
            assert all(math.isfinite(x) for row in scores for x in (row if isinstance(row, list) else [row]))
        else:
            assert len(payload["p_a_over_b"]) == len(payload["groups"])
    else:
        error = payload["error"]
        assert error.startswith("body") or "items" in error or "body" in error, error


def teardown_module() -> None:
    if "client" in _SERVER:
        _SERVER.pop("client").__exit__(None, None, None)
    import shutil

    shutil.rmtree(SCRATCH, ignore_errors=True)

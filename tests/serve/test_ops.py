"""A server fit to leave localhost: API key, probes, Prometheus metrics, request logs without
texts, JSON bodies without a content type, readable JSON errors."""
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import PROMPTS, RESPONSES, client, tiny_model

from pluralrm.errors import ConfigError
from pluralrm.serve.auth import check_exposure, is_loopback, read_api_key

KEY = "k" * 20 + "-secret"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_loopback_detection_and_the_exposure_rule(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("::")
    check_exposure("127.0.0.1", None, False)
    check_exposure("0.0.0.0", "key.txt", False)
    check_exposure("0.0.0.0", None, True)
    with pytest.raises(ConfigError, match="--host 0.0.0.0 .* --api-key-file"):
        check_exposure("0.0.0.0", None, False)
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    with pytest.raises(ConfigError, match="short.txt: the key must be one word of at least 16"):
        read_api_key(short)
    good = tmp_path / "key.txt"
    good.write_text(f"  {KEY}\n")
    assert read_api_key(good) == KEY
    with pytest.raises(ConfigError, match="missing.txt: cannot read it"):
        read_api_key(tmp_path / "missing.txt")


def test_cli_refuses_a_public_address_without_a_key_before_loading_anything(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pluralrm", "serve", "--checkpoint", str(tmp_path / "nowhere"),
                           "--host", "0.0.0.0", "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "--host 0.0.0.0 accepts connections from other machines: give --api-key-file" in done.stderr
    assert "nowhere" not in done.stderr  # refused before the model directory was even looked at


def test_api_key_is_required_on_every_route_but_the_probes(model):
    body = {"prompts": PROMPTS[:1], "responses": RESPONSES[:1]}
    with client(model, api_key=KEY) as c:
        for route, call in [("/score", lambda h: c.post("/score", json=body, headers=h)),
                            ("/get_reward", lambda h: c.post("/get_reward", json={"query": ["q a"]}, headers=h)),
                            ("/groups", lambda h: c.get("/groups", headers=h)),
                            ("/metrics", lambda h: c.get("/metrics", headers=h))]:
            for headers in ({}, {"Authorization": "Bearer wrong-key-of-some-length"}, {"X-API-Key": KEY[:-1]},
                            {"Authorization": f"Basic {KEY}"}):
                answer = call(headers)
                assert answer.status_code == 401, (route, headers)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert KEY not in answer.text
            assert call({"Authorization": f"Bearer {KEY}"}).status_code == 200, route
            assert call({"X-API-Key": KEY}).status_code == 200, route
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").status_code == 200


def test_readiness_follows_the_lifespan(model):
    from fastapi.testclient import TestClient

    from pluralrm.serve import ServeConfig, create_app

    app = create_app(model, ServeConfig(warmup=False))
    outside = TestClient(app)  # no lifespan: the model's batcher is not running
    assert outside.get("/readyz").status_code == 503 and outside.get("/readyz").json()["status"] == "not ready"
    assert outside.get("/healthz").status_code == 200
    with TestClient(app) as c:
        assert c.get("/readyz").json() == {"status": "ready"}


def _metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    found = re.search(pattern, text)
    assert found, (name, labels, text)
    return float(found.group(1))


def test_metrics_count_requests_latency_and_batch_sizes(model):
    with client(model) as c:
        for n in (1, 3, 3):
            assert c.post("/score", json={"prompts": ["p"] * n, "responses": ["r"] * n}).status_code == 200
        assert c.post("/score", json={"prompts": ["p"]}).status_code == 422
        c.get("/no-such-route")
        text = c.get("/metrics").text
    assert "# TYPE pluralrm_requests_total counter" in text
    assert _metric(text, "pluralrm_requests_total", route="/score", status="200") == 3
    assert _metric(text, "pluralrm_requests_total", route="/score", status="422") == 1
    assert _metric(text, "pluralrm_requests_total", route="other", status="404") == 1
    assert _metric(text, "pluralrm_request_duration_seconds_count", route="/score") == 4
    assert _metric(text, "pluralrm_request_duration_seconds_bucket", route="/score", le="+Inf") == 4
    assert _metric(text, "pluralrm_request_duration_seconds_sum", route="/score") > 0
    # batch sizes: one model call of 1 row and two of 3 (cumulative buckets)
    assert _metric(text, "pluralrm_batch_rows_count") == 3
    assert _metric(text, "pluralrm_batch_rows_sum") == 7
    assert _metric(text, "pluralrm_batch_rows_bucket", le="1") == 1
    assert _metric(text, "pluralrm_batch_rows_bucket", le="2") == 1
    assert _metric(text, "pluralrm_batch_rows_bucket", le="4") == 3


def test_request_log_has_no_texts_by_default(model, caplog):
    secret = "my private medical question"
    with caplog.at_level(logging.INFO, logger="pluralrm.serve.access"):
        with client(model) as c:
            c.post("/score", json={"prompts": [secret], "responses": ["an answer"]})
    lines = [r.getMessage() for r in caplog.records if r.name == "pluralrm.serve.access"]
    assert len(lines) == 1 and "POST /score 200" in lines[0] and re.search(r"in=\d+B out=\d+B", lines[0])
    assert secret not in lines[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pluralrm.serve.access"):
        with client(model, log_bodies=True) as c:
            c.post("/score", json={"prompts": [secret], "responses": ["an answer"]})
    assert secret in caplog.records[-1].getMessage()


def test_json_without_content_type_is_read_and_other_types_say_to_send_json(model):
    body = b'{"prompts": ["p"], "responses": ["r"]}'
    with client(model) as c:
        plain = c.post("/score", content=body)  # no Content-Type header
        assert plain.status_code == 200, plain.text
        assert len(plain.json()["scores"]) == 1
        text = c.post("/score", content=body, headers={"Content-Type": "text/plain"})
        assert text.status_code == 422
        assert text.json()["error"] == ("body: the body is not JSON: send a JSON object with 'Content-Type: "
                                        "application/json' (got Content-Type: text/plain)")
        broken = c.post("/score", content=b'{"prompts": ["p"],, "responses": ["r"]}',
                        headers={"Content-Type": "application/json"})
        assert broken.status_code == 422
        assert broken.json()["error"].startswith("body: invalid JSON at character 18 (")


def test_chat_messages_are_scored_like_chat_training_data_and_malformed_ones_name_the_field(model):
    import numpy as np

    from pluralrm.data.dialogue import render_messages

    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPTS[0]}]
    with client(model) as c:
        good = c.post("/score", json={"prompts": [prompt, PROMPTS[1]],
                                      "responses": [[{"role": "assistant", "content": RESPONSES[0]}], RESPONSES[1]]})
        assert good.status_code == 200, good.text
        np.testing.assert_allclose(good.json()["scores"], model.score([render_messages(prompt), PROMPTS[1]],
                                                                      RESPONSES[:2]), rtol=1e-6, atol=1e-6)
        cases = [
            ({"prompts": ["p", [{"role": "user"}]], "responses": ["r", "r"]}, "/score", "body.prompts.1.0.content"),
            ({"prompts": ["p"], "responses": [[{"role": "assistant", "content": 5}]]}, "/score",
             "body.responses.0.0.content"),
            ({"prompts": ["p"], "responses": [["just text"]]}, "/score", "body.responses.0.0"),
            ({"prompt": [{"content": "hi"}], "a": "x", "b": "y"}, "/compare", "body.prompt.0.role"),
        ]
        for body, route, field in cases:
            answer = c.post(route, json=body)
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"].startswith(f"{field}:"), answer.json()


def test_serve_help_documents_the_routes_with_curl_examples(capsys):
    from pluralrm.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for text in ("POST /score", "POST /compare", "POST /get_reward", "/healthz", "/metrics",
                 "curl -s localhost:8000/score", "docs/http_api.md", "--api-key-file",
                 "Content-Type: application/json"):
        assert text in out, text

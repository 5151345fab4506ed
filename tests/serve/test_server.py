"""The reward server over a real loopback socket: `pluralrm serve` in a subprocess."""
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from pluralrm.models import RewardModel
from pluralrm.score import aggregate, population_weights

sys.path.insert(0, str(Path(__file__).parents[1] / "score"))
from score_helpers import PROMPTS, RESPONSES, SCHEMA, saved_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# each server process takes a few seconds to start: one worker runs the module (make test: --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]


class Server:
    """``pluralrm serve --port 0`` in a subprocess; ``url`` once it answers /health."""

    def __init__(self, model_dir: Path, *extra: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pluralrm", "serve", "--checkpoint", str(model_dir), "--port", "0",
             *(extra or ("--no-request-log",))],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
        )
        line = self._first_line(timeout=60)
        assert line.startswith("pluralrm serve: listening on http://"), line
        self.url = line.rsplit(" ", 1)[1].replace("0.0.0.0", "127.0.0.1")
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.1)

    def _first_line(self, timeout: float) -> str:
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not out or not out[0]:
            self.proc.kill()
            raise AssertionError(f"the server did not start: {self.proc.stderr.read()}")
        return out[0].strip()

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model(model_dir):
    return RewardModel.load(model_dir)


@pytest.fixture(scope="module")
def server(model_dir):
    s = Server(model_dir, "--no-request-log", "--max-wait-ms", "20", "--max-items", "64", "--max-text-chars", "300",
               "--max-body-bytes", "20000")
    yield s
    s.stop()


def post(server, route, body):
    return httpx.post(f"{server.url}{route}", json=body, timeout=30)


def test_health_and_groups(server):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["groups"] == SCHEMA.num_groups
    groups = httpx.get(f"{server.url}/groups").json()
    assert groups["attributes"] == ["country", "language"]
    assert [g["label"] for g in groups["groups"]] == SCHEMA.group_labels()
    assert [g["count"] for g in groups["groups"]] == [3, 2, 1, 1]
    np.testing.assert_allclose([g["share"] for g in groups["groups"]], [3 / 7, 2 / 7, 1 / 7, 1 / 7])


def test_score_answers_equal_the_python_api(server, model):
    one = post(server, "/score", {"prompts": PROMPTS, "responses": RESPONSES, "groups": {"country": "NG", "language": "yo"}})
    assert one.status_code == 200
    np.testing.assert_allclose(one.json()["scores"], model.score(PROMPTS, RESPONSES, groups="country=NG,language=yo"),
                               rtol=1e-6, atol=1e-6)
    rows = ["country=US", "country=IN,language=hi", "language=yo"]
    per_row = post(server, "/score", {"prompts": PROMPTS, "responses": RESPONSES, "groups": rows}).json()
    np.testing.assert_allclose(per_row["scores"], model.score(PROMPTS, RESPONSES, groups=rows), rtol=1e-6, atol=1e-6)
    prompts = [PROMPTS[0]] * 3
    every = post(server, "/score", {"prompts": prompts, "responses": RESPONSES, "all_groups": True,
                                    "aggregate": "weighted", "weights": "population"}).json()
    table, labels = model.score_all_groups(prompts, RESPONSES)
    assert every["groups"] == labels
    np.testing.assert_allclose(every["scores"], table, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(every["aggregate"], aggregate(table, "weighted", population_weights(model.schema)),
                               rtol=1e-6, atol=1e-6)
    soft = post(server, "/score", {"prompts": prompts, "responses": RESPONSES, "all_groups": True, "aggregate": "softmin",
                                   "temperature": 0.5, "normalize": "zscore"}).json()
    np.testing.assert_allclose(soft["aggregate"], aggregate(table, "softmin", normalize="zscore", temperature=0.5,
                                                            sets=prompts), rtol=1e-5, atol=1e-6)


def test_compare_answers_equal_the_python_api(server, model):
    body = {"prompt": PROMPTS[1], "a": RESPONSES[0], "b": RESPONSES[1]}
    every = post(server, "/compare", body).json()
    assert every["groups"] == SCHEMA.group_labels()
    expected = model.predict_preference(PROMPTS[1], RESPONSES[0], RESPONSES[1], groups="all")[0]
    np.testing.assert_allclose(every["p_a_over_b"], expected, rtol=1e-6, atol=1e-6)
    some = post(server, "/compare", {**body, "groups": ["country=NG,language=en", "country=US"]}).json()
    assert some["groups"] == ["country=NG,language=en", "country=US"]
    for p, g in zip(some["p_a_over_b"], some["groups"]):
        assert p == pytest.approx(float(model.predict_preference(PROMPTS[1], RESPONSES[0], RESPONSES[1], groups=g)[0]),
                                  abs=1e-6)


def test_unseen_groups_are_pooled_with_a_warning(server, model):
    answer = post(server, "/score", {"prompts": PROMPTS, "responses": RESPONSES, "groups": "country=FR"}).json()
    assert answer["warnings"] == ["group value country='FR' is not in the model's schema; using the pooled reward"]
    np.testing.assert_allclose(answer["scores"], model.score(PROMPTS, RESPONSES), rtol=1e-6, atol=1e-6)


def test_concurrent_requests_are_batched_and_answered_exactly(server, model):
    before = httpx.get(f"{server.url}/health").json()
    countries = ["NG", "US", "IN", ""]
    bodies = [
        {"prompts": [f"question {i}", f"question {i} again"], "responses": [f"answer {i}", f"reply {i * 7}"],
         "groups": {"country": countries[i % 4]}}
        for i in range(48)
    ]

    async def send_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/score", json=b) for b in bodies))

    answers = asyncio.run(send_all())
    assert all(a.status_code == 200 for a in answers)
    for body, answer in zip(bodies, answers):
        expected = model.score(body["prompts"], body["responses"], groups=body["groups"])
        np.testing.assert_allclose(answer.json()["scores"], expected, rtol=1e-6, atol=1e-6)
    after = httpx.get(f"{server.url}/health").json()
    jobs, calls = after["jobs"] - before["jobs"], after["model_calls"] - before["model_calls"]
    assert jobs == 48
    assert calls < jobs / 2, (calls, after)  # requests shared model calls
    assert after["largest_call"] >= 8


@pytest.mark.parametrize(
    "route, body, field",
    [
        ("/score", {"responses": ["r"]}, "body.prompts"),
        ("/score", {"prompts": ["p"], "responses": [3]}, "body.responses.0"),
        ("/score", {"prompts": ["p", "q"], "responses": ["r"]}, "body.responses"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "groups": ["country=NG", "country=US"]}, "body.groups"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "aggregate": "worst"}, "body.aggregate"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "all_groups": True, "aggregate": "plurality"}, "body.aggregate"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "all_groups": True, "aggregate": "quantile", "q": 2}, "body.q"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "all_groups": True, "aggregate": "weighted", "weights": [1]},
         "body.weights"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "colour": "red"}, "body.colour"),
        ("/score", {"prompts": ["p"], "responses": ["r" * 301]}, "body.responses.0"),
        ("/score", {"prompts": ["p"], "responses": ["r"], "groups": "religion=x"}, "body.groups"),
        ("/compare", {"prompt": "p", "a": "x"}, "body.b"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(server, route, body, field):
    answer = post(server, route, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith(f"{field}:"), answer.json()


def test_oversized_requests_are_413(server):
    too_many = post(server, "/score", {"prompts": ["p"] * 65, "responses": ["r"] * 65})
    assert too_many.status_code == 413 and "prompts: 65 items" in too_many.json()["error"]
    big = {"prompts": ["p" * 250] * 60, "responses": ["r" * 250] * 60}  # ~30 kB > 20 kB
    declared = post(server, "/score", big)
    assert declared.status_code == 413 and declared.json()["error"].startswith("body: ")
    chunked = httpx.post(f"{server.url}/score", content=iter([json.dumps(big).encode()]),
                         headers={"content-type": "application/json"})  # no Content-Length
    assert chunked.status_code == 413 and chunked.json()["error"].startswith("body: more than 20000 bytes")
    small_chunked = httpx.post(f"{server.url}/score", content=iter([b'{"prompts": ["p"], ', b'"responses": ["r"]}']),
                               headers={"content-type": "application/json"})
    assert small_chunked.status_code == 200, small_chunked.text
    assert post(server, "/score", {"prompts": ["p"], "responses": ["r"]}).status_code == 200  # still serving


def test_sigterm_drains_requests_in_flight_and_exits_cleanly(model_dir, model):
    server = Server(model_dir, "--no-request-log", "--max-wait-ms", "1500", "--unseen", "error")
    try:
        strict = post(server, "/score", {"prompts": ["p"], "responses": ["r"], "groups": "country=FR"})
        assert strict.status_code == 422 and strict.json()["error"].startswith("body.groups:")
        assert "'FR'" in strict.json()["error"]
        answers = []
        body = {"prompts": PROMPTS, "responses": RESPONSES, "groups": "country=US,language=en"}
        client = threading.Thread(target=lambda: answers.append(post(server, "/score", body)))
        client.start()
        time.sleep(0.5)  # the request now waits in the batcher (up to 1.5 s for company)
        server.proc.send_signal(signal.SIGTERM)
        client.join(30)
        rc, out, err = server.stop()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert answers and answers[0].status_code == 200, (answers, err)
    np.testing.assert_allclose(answers[0].json()["scores"], model.score(PROMPTS, RESPONSES, groups="country=US,language=en"),
                               rtol=1e-6, atol=1e-6)
    assert rc == 0, err
    assert "stopped by SIGTERM" in out


def test_a_public_address_with_an_api_key_file_over_a_real_socket(model_dir, model, tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("0123456789abcdef-ghij\n")
    server = Server(model_dir, "--host", "0.0.0.0", "--api-key-file", str(key))
    try:
        body = {"prompts": PROMPTS, "responses": RESPONSES}
        assert post(server, "/score", body).status_code == 401
        answer = httpx.post(f"{server.url}/score", json=body, headers={"Authorization": "Bearer 0123456789abcdef-ghij"})
        assert answer.status_code == 200
        np.testing.assert_allclose(answer.json()["scores"], model.score(PROMPTS, RESPONSES), rtol=1e-6, atol=1e-6)
        metrics = httpx.get(f"{server.url}/metrics", headers={"X-API-Key": "0123456789abcdef-ghij"}).text
        assert 'pluralrm_requests_total{route="/score",status="401"} 1' in metrics
        assert 'pluralrm_requests_total{route="/score",status="200"} 1' in metrics
    finally:
        rc, out, err = server.stop()
    assert rc == 0, err
    log = [line for line in err.splitlines() if "POST /score" in line]
    assert len(log) == 2 and " 401 " in log[0] and " 200 " in log[1], err
    assert PROMPTS[0] not in err and RESPONSES[0] not in err  # no texts in the request log


def test_openrlhf_rollouts_one_query_per_request_share_model_calls(server, model):
    """OpenRLHF posts one rollout per request, many at once: they must share batched calls."""
    before = httpx.get(f"{server.url}/health").json()
    payloads = [{"query": [f"question {i} answer {i * 3}"], "prompts": [f"question {i} "], "labels": [None]}
                for i in range(32)]

    async def send_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/get_reward", content=json.dumps(p).encode(),
                                                      headers={"Content-Type": "application/json"})
                                          for p in payloads))

    answers = asyncio.run(send_all())
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:2]
    got = [a.json()["rewards"][0] for a in answers]
    expected = model.score([p["prompts"][0] for p in payloads], [f"answer {i * 3}" for i in range(32)])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    after = httpx.get(f"{server.url}/health").json()
    assert after["jobs"] - before["jobs"] == 32
    assert after["model_calls"] - before["model_calls"] < 16, after

"""The replay server of trigger_celery.testing, exercised over real HTTP with ``requests``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests

from tests.support import SHARED_FIXTURES
from trigger_celery.testing import ReplayServer, load_exchanges
from trigger_celery.testing.replay import parse_json, parse_pygithub

RECORDINGS = SHARED_FIXTURES / "github" / "replay"

# A small exchange pair in PyGithub's format, written for this test (not a copied recording).
# The second exchange has no trailing blank line, as the last one of a file may.
PYGITHUB_TEXT = "\n".join([
    "https", "GET", "api.github.com", "None", "/repos/octo/hello",
    "{'Authorization': 'token private_token_removed', 'User-Agent': 'PyGithub/Python'}", "None",
    "200",
    "[('Content-Type', 'application/json; charset=utf-8'), ('Content-Length', '9999'), "
    "('Content-Encoding', 'gzip'), ('Transfer-Encoding', 'chunked'), ('X-RateLimit-Reset', '1'), "
    "('Link', '<https://api.github.com/repos/octo/hello/issues?page=2>; rel=\"next\"')]",
    '{"url": "https://api.github.com/repos/octo/hello", "full_name": "octo/hello"}',
    "",
    "https", "POST", "api.github.com", "None", "/repos/octo/hello/issues",
    "{'Content-Type': 'application/json'}", '{"title": "t"}',
    "201", "[('content-type', 'application/json')]", '{"number": 1}',
])


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


def test_binds_loopback_on_a_free_port(server: ReplayServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_parses_pygithub_format() -> None:
    first, second = parse_pygithub(PYGITHUB_TEXT)
    assert (first.method, first.path, first.status) == ("GET", "/repos/octo/hello", 200)
    assert first.request_body is None
    assert first.header("x-ratelimit-reset") == "1"
    assert (second.method, second.status, second.request_json()) == ("POST", 201, {"title": "t"})
    with pytest.raises(ValueError, match="truncated"):
        parse_pygithub("\n".join(PYGITHUB_TEXT.splitlines()[:15]))


def test_serves_with_rewrites_and_drops_framing_headers(server: ReplayServer) -> None:
    server.enqueue(parse_pygithub(PYGITHUB_TEXT))
    resp = requests.get(f"{server.base_url}/repos/octo/hello", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"url": f"{server.base_url}/repos/octo/hello", "full_name": "octo/hello"}
    assert resp.headers["link"] == f'<{server.base_url}/repos/octo/hello/issues?page=2>; rel="next"'
    assert "content-encoding" not in resp.headers
    assert "transfer-encoding" not in resp.headers
    assert resp.headers["content-length"] == str(len(resp.content))  # the server's own


def test_setup_exchanges_are_not_required(server: ReplayServer) -> None:
    server.enqueue(parse_pygithub(PYGITHUB_TEXT))
    resp = requests.post(f"{server.base_url}/repos/octo/hello/issues", json={"title": "t"},
                         timeout=5)
    assert resp.status_code == 201 and resp.json() == {"number": 1}
    assert [(ex.method, ex.path) for ex in server.pending()] == [("GET", "/repos/octo/hello")]


def test_same_path_served_in_recorded_order_then_404(server: ReplayServer) -> None:
    server.add("GET", "/users/octocat", body={"n": 1})
    server.add("GET", "/users/octocat", status=403, body={"message": "API rate limit exceeded"})
    url = f"{server.base_url}/users/octocat"
    assert requests.get(url, timeout=5).json() == {"n": 1}
    assert requests.get(url, timeout=5).status_code == 403
    third = requests.get(url, timeout=5)
    assert third.status_code == 404
    assert "no response queued for GET /users/octocat" in third.json()["message"]
    assert [r.full_path for r in server.unexpected] == ["/users/octocat"]


def test_unexpected_request_lists_what_is_queued(server: ReplayServer) -> None:
    server.add("POST", "/repos/o/r/issues", status=201, body={})
    resp = requests.get(f"{server.base_url}/repos/o/r", timeout=5)
    assert resp.status_code == 404
    assert resp.json()["queued"] == ["POST /repos/o/r/issues"]


def test_query_order_and_percent_encoding_do_not_matter(server: ReplayServer) -> None:
    server.add("GET", "/repos/o/r/issues?state=open&labels=a%2Cb", body=[1])
    server.add("GET", "/repos/o/r/labels/Label%20with%20%28%26%29", body={"ok": True})
    r1 = requests.get(f"{server.base_url}/repos/o/r/issues?labels=a,b&state=open", timeout=5)
    r2 = requests.get(f"{server.base_url}/repos/o/r/labels/Label with (%26)", timeout=5)
    assert (r1.json(), r2.json()) == ([1], {"ok": True})
    assert server.requests[0].query == {"labels": ["a,b"], "state": ["open"]}
    assert server.requests[1].path == "/repos/o/r/labels/Label with (&)"


def test_records_requests_and_hides_credentials_in_repr(server: ReplayServer) -> None:
    server.add("PATCH", "/repos/o/r/issues/1", body={"state": "closed"})
    requests.patch(f"{server.base_url}/repos/o/r/issues/1", json={"state": "closed"},
                   headers={"Authorization": "token ghp_secret123"}, timeout=5)
    (req,) = server.requests
    assert (req.method, req.path, req.json()) == ("PATCH", "/repos/o/r/issues/1",
                                                  {"state": "closed"})
    assert req.headers["authorization"] == "token ghp_secret123"
    assert "ghp_secret123" not in repr(req)


def test_reset_times_relative_to_now() -> None:
    now = [1_000_000.0]
    with ReplayServer(clock=lambda: now[0]) as server:
        added = server.add("GET", "/rate_limit", status=403, body={"message": "x"}, reset_in=3.0)
        assert added.header("x-ratelimit-reset") == "1000003"
        server.enqueue(parse_pygithub(PYGITHUB_TEXT))  # recorded reset: 1 (long past)
        now[0] = 2_000_000.0
        assert server.set_reset_in(60) == 2_000_060
        resp = requests.get(f"{server.base_url}/repos/octo/hello", timeout=5)
        assert resp.headers["x-ratelimit-reset"] == "2000060"
        # the POST had no reset header and still has none
        assert [ex.header("x-ratelimit-reset") for ex in server.pending()] == ["2000060", None]


def test_json_format_roundtrip(tmp_path: Path, server: ReplayServer) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps([
        {"method": "get", "path": "/a", "status": 200, "headers": [["X-Thing", "1"]],
         "body": {"link": "https://api.github.com/a"}},
        {"method": "POST", "path": "/b", "status": 204, "body": None, "request_body": {"k": 1}},
    ]))
    a, b = server.load(path)
    assert (a.method, b.request_json(), b.body) == ("GET", {"k": 1}, "")
    resp = requests.get(f"{server.base_url}/a", timeout=5)
    assert resp.headers["x-thing"] == "1"
    assert resp.json() == {"link": f"{server.base_url}/a"}
    assert requests.post(f"{server.base_url}/b", timeout=5).status_code == 204
    with pytest.raises(ValueError, match="unknown fields"):
        parse_json([{"method": "GET", "path": "/", "bogus": 1}])
    with pytest.raises(ValueError):
        parse_json({"method": "GET"})


def test_stop_and_restart_is_safe() -> None:
    srv = ReplayServer().start()
    url = srv.base_url
    srv.stop()
    srv.stop()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


@pytest.mark.skipif(not RECORDINGS.is_dir(), reason=f"recordings not found at {RECORDINGS}")
def test_every_shared_recording_loads() -> None:
    files = sorted(RECORDINGS.glob("*.txt"))
    assert files
    for f in files:
        exchanges = load_exchanges(f)
        assert exchanges, f
        for ex in exchanges:
            assert ex.method in {"GET", "POST", "PATCH", "PUT", "DELETE"}
            assert ex.path.startswith("/")
            assert 100 <= ex.status < 600


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    with ReplayServer(keep_alive=True) as server:
        server.add("GET", "/a?x=1", body={"n": 1})
        server.add("POST", "/b", status=201, body={"n": 2}, headers={"x-ratelimit-remaining": "4"})
        server.add("GET", "/a?x=1", body=b"raw")
        with requests.Session() as s:
            first = s.get(f"{server.base_url}/a?x=1", timeout=5)
            second = s.post(f"{server.base_url}/b", json={"q": "\u00e9"}, timeout=5)
            third = s.get(f"{server.base_url}/a?x=1", timeout=5)
            missing = s.get(f"{server.base_url}/nothing", timeout=5)
            manager = s.get_adapter(server.base_url).poolmanager
            opened = [manager.pools[k].num_connections for k in manager.pools.keys()]
            assert opened == [1]  # one TCP connection carried all four
        assert (first.json(), second.status_code, second.json()) == ({"n": 1}, 201, {"n": 2})
        assert second.headers["x-ratelimit-remaining"] == "4" and third.content == b"raw"
        assert missing.status_code == 404
        assert server.requests[1].json() == {"q": "\u00e9"}
        assert server.requests[0].query == {"x": ["1"]}

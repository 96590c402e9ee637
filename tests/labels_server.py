"""A GitHub stand-in for ``issues.add_labels`` with slow answers: ``POST
/repos/octo/hello/issues/<n>/labels`` answers after the delay set for its label (seconds) with
the label as GitHub would, and counts every request per label (pytest-httpserver, threaded, so
calls in flight at once are answered at once). ``fail`` answers a label's first requests with
an error status instead: ``{"x": (2, 502)}`` makes the first two requests for ``x`` a 502."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response


class LabelsServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delays: dict[str, float] = {}
        self.fail: dict[str, tuple[int, int]] = {}
        self.requests: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.server.expect_request(re.compile(r"^/repos/octo/hello/issues/\d+/labels$"),
                                   method="POST").respond_with_handler(self._answer)
        self.server.start()
        self.base_url = self.server.url_for("").rstrip("/")

    def _answer(self, request: Request) -> Response:
        labels = json.loads(request.get_data())
        label = labels[0]
        with self.lock:
            self.requests[label] += 1
            delay = self.delays.get(label, 0.0)
            times, status = self.fail.get(label, (0, 0))
            failing = self.requests[label] <= times
        time.sleep(delay)
        with self.lock:
            self.answered[label] += 1
        if failing:
            return Response(json.dumps({"message": "no", "status": str(status)}), status=status,
                            content_type="application/json; charset=utf-8")
        body = [{"id": 1, "name": label, "color": "ededed", "default": False}]
        return Response(json.dumps(body), content_type="application/json; charset=utf-8")

    def reset(self, delays: dict[str, float] | None = None,
              fail: dict[str, tuple[int, int]] | None = None) -> None:
        with self.lock:
            self.delays = dict(delays or {})
            self.fail = dict(fail or {})
            self.requests.clear()
            self.answered.clear()

    def stop(self) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

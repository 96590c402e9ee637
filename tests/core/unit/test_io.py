"""``io`` against a fake engine: the public ``IO`` reaches the engine only through the
``Runtime`` protocol, so its own behaviour (argument checks, ``io.<integration>`` paths, the
logger, ``try_``, ``send_event``'s default event id) is tested here with no Redis and no worker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from trigger_celery import ValidationError
from trigger_celery._errors import Suspend
from trigger_celery._io import IO, Runtime, call_with
from trigger_celery.integration import Integration, Namespace, Operation, TaskInfo, operation


class Post(BaseModel):
    channel: str
    text: str


class Messages(Namespace):
    name = "messages"

    @operation(params=Post, display="Post {text}")
    def post(client: str, params: Post, task: TaskInfo) -> dict[str, str]:
        return {"sent": params.text}


class Chat(Integration):
    id = "chat"
    icon = "chat"
    namespaces = (Messages,)

    def create_client(self, credential: str) -> str:
        return f"client({credential})"


class FakeRuntime:
    """Records what io asks of the engine; runs inline tasks at once."""

    def __init__(self, integrations: dict[str, Integration] | None = None) -> None:
        self.run_id = "run_fake"
        self.integrations = integrations or {}
        self.calls: list[tuple[str, Any]] = []
        self.io = IO(self)

    def run_inline(self, key: str, callback: Callable[..., Any], **options: Any) -> Any:
        self.calls.append(("run_inline", (key, options)))
        info = TaskInfo(self.run_id, key, f"idem-{key}", options.get("name") or key, 1)
        return call_with(callback, info, self.io)

    def wait(self, key: str, seconds: float) -> None:
        self.calls.append(("wait", (key, seconds)))

    def dispatch(self, integ: Integration, qname: str, op: Operation[Any], key: str,
                 params: dict[str, Any]) -> Any:
        self.calls.append(("dispatch", (integ.id, qname, key, params)))
        return {"dispatched": qname}

    def log(self, level: str, message: str, data: dict[str, Any]) -> None:
        self.calls.append(("log", (level, message, data)))

    def send_event(self, name: str, payload: Any, *, id: str | None,
                   deliver_at: datetime | None) -> list[str]:
        self.calls.append(("send_event", (name, payload, id)))
        return ["run_started"]


def test_io_takes_the_run_id_from_the_runtime() -> None:
    rt: Runtime = FakeRuntime()
    assert IO(rt).run_id == "run_fake"


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), "5", None])
def test_wait_rejects_bad_durations_before_reaching_the_engine(seconds: Any) -> None:
    rt = FakeRuntime()
    with pytest.raises(ValidationError, match="seconds must be a number >= 0"):
        rt.io.wait("nap", seconds)
    assert rt.calls == []


def test_wait_passes_seconds_as_float() -> None:
    rt = FakeRuntime()
    rt.io.wait("nap", 2)
    assert rt.calls == [("wait", ("nap", 2.0))]


def test_logger_levels_and_data() -> None:
    rt = FakeRuntime()
    rt.io.logger.warn("slow", ms=120)
    rt.io.logger.debug("quiet")
    assert rt.calls == [("log", ("WARN", "slow", {"ms": 120})), ("log", ("DEBUG", "quiet", {}))]


def test_integration_paths_dispatch_operations() -> None:
    rt = FakeRuntime({"chat": Chat(credential="secret")})
    out = rt.io.chat.messages.post("hello", channel="c1", text="hi")
    assert out == {"dispatched": "messages.post"}
    assert rt.calls == [("dispatch", ("chat", "messages.post", "hello",
                                      {"channel": "c1", "text": "hi"}))]
    assert rt.io.chat is rt.io.chat  # resolved once per execution


def test_unknown_integrations_and_operations_name_what_exists() -> None:
    rt = FakeRuntime({"chat": Chat(credential="secret")})
    with pytest.raises(AttributeError, match=r"integrations of this job: \['chat'\]"):
        _ = rt.io.github
    with pytest.raises(AttributeError, match="chat has no task or namespace 'messages.delete'"):
        _ = rt.io.chat.messages.delete


def test_integration_run_task_gets_the_client_and_the_integration_defaults() -> None:
    chat = Chat(credential="secret")
    rt = FakeRuntime({"chat": chat})
    got = rt.io.chat.run_task("raw", lambda client, task: (client, task.key))
    assert got == ("client(secret)", "raw")
    (_, (key, options)), = rt.calls
    assert options["integration"] is chat and options["icon"] == "chat"
    assert options["retry"] == Chat.retry


def test_try_catches_errors_but_not_suspension() -> None:
    io = FakeRuntime().io

    def fail() -> None:
        raise KeyError("k")

    assert io.try_(fail, lambda err: type(err).__name__) == "KeyError"

    def suspend() -> None:
        raise Suspend(None, "waiting")

    with pytest.raises(Suspend):
        io.try_(suspend, lambda err: "swallowed")


def test_send_event_defaults_the_event_id_to_the_tasks_idempotency_key() -> None:
    rt = FakeRuntime()
    assert rt.io.send_event("notify", "order.paid", {"id": 1}) == ["run_started"]
    assert ("send_event", ("order.paid", {"id": 1}, "idem-notify")) in rt.calls
    rt.io.send_event("again", "order.paid", {}, id="evt-1")
    assert ("send_event", ("order.paid", {}, "evt-1")) in rt.calls


def test_random_is_a_task_within_bounds() -> None:
    rt = FakeRuntime()
    n = rt.io.random("dice", min=1, max=6, round=True)
    assert isinstance(n, int) and 1 <= n <= 6
    assert rt.calls[0][0] == "run_inline" and rt.calls[0][1][1]["name"] == "random"


def test_call_with_passes_as_many_arguments_as_the_callback_takes() -> None:
    assert call_with(lambda: 0, "task", "io") == 0
    assert call_with(lambda t: t, "task", "io") == "task"
    assert call_with(lambda t, io: (t, io), "task", "io") == ("task", "io")
    assert call_with(lambda *a: a, "task", "io") == ("task", "io")
    assert call_with(lambda i=7: i, "task", "io") == 7  # defaults are the caller's own

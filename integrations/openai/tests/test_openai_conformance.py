"""Conformance of our OpenAI operations with OpenAI's published OpenAPI description.

Uses ``../shared/fixtures/openai`` (``openapi.yaml`` and example response bodies taken from it)
when that folder exists, and skips, saying so, otherwise. The files are read in place, never
copied into the project. For each operation: the published example bodies (``<operation>.response
*.json``) are served from a local server, the operation runs through the real SDK, its output must
equal the served body, and the request it sent must match an operation of ``openapi.yaml`` (path
template and method) whose request schema has every top-level key of the request body.

PyYAML is not in the project's environment, so ``openapi.yaml`` is read with the minimal
block-YAML reader below (mappings, sequences, scalars; block and multi-line scalars skipped),
enough for the ``paths`` and ``components`` outline we need.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support import SHARED_FIXTURES
from trigger_celery.integration import OperationResult, TaskInfo
from trigger_celery_openai import OpenAI

SHARED = SHARED_FIXTURES / "openai"
FIXTURES = Path(__file__).parent / "fixtures"
TASK = TaskInfo(run_id="run-1", key="k", idempotency_key="ef" * 32, name="openai", attempts=1)

pytestmark = pytest.mark.skipif(
    not (SHARED / "openapi.yaml").is_file(),
    reason=f"{SHARED} not present: OpenAI conformance against the published OpenAPI skipped",
)

# -- a minimal block-YAML reader ----------------------------------------------------------------

_KEY = re.compile(
    r"""^(?P<key>"[^"]*"|'[^']*'|[^\s"'#-][^:]*?|-[^\s][^:]*?)\s*:(?:\s+(?P<val>.*))?$"""
)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def read_block_yaml(text: str) -> dict[str, Any]:
    """Parse the block-style subset of YAML that OpenAI's ``openapi.yaml`` is written in.

    Mappings and sequences nest by indentation; scalar values are kept as (unquoted) strings;
    block scalars (``|``, ``>``) and continuation lines of multi-line scalars are skipped (their
    values are not needed here). Flow collections (``[a, b]``) are kept as strings.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[int, Any]] = [(-1, root)]
    pending: tuple[Any, str, int] | None = None  # a "key:" whose value starts on the next line
    skip_deeper_than: int | None = None

    def put_key(container: dict[str, Any], body: str, indent: int) -> None:
        nonlocal pending, skip_deeper_than
        match = _KEY.match(body)
        if match is None:  # a continuation line we failed to attribute: ignore it
            skip_deeper_than = indent
            return
        key, value = _unquote(match.group("key")), match.group("val")
        if value is None or value.strip() == "" or value.strip().startswith("#"):
            pending = (container, key, indent)
        else:
            container[key] = _unquote(value)
            skip_deeper_than = indent  # block scalar body or plain-scalar continuation

    for raw in text.splitlines():
        body = raw.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        indent = len(raw) - len(body)
        if skip_deeper_than is not None:
            if indent > skip_deeper_than:
                continue
            skip_deeper_than = None
        is_item = body == "-" or body.startswith("- ")
        if pending is not None:
            parent, key, key_indent = pending
            pending = None
            if indent > key_indent or (indent == key_indent and is_item):
                child: Any = [] if is_item else {}
                parent[key] = child
                stack.append((indent, child))
            else:
                parent[key] = None
        while stack[-1][0] > indent or (
            stack[-1][0] == indent and isinstance(stack[-1][1], list) and not is_item
        ):
            stack.pop()
        container = stack[-1][1]
        if is_item:
            if not isinstance(container, list):
                skip_deeper_than = indent
                continue
            rest = body[1:].lstrip(" ")
            column = indent + (len(body) - len(rest))
            if rest and _KEY.match(rest):
                item: dict[str, Any] = {}
                container.append(item)
                stack.append((column, item))
                put_key(item, rest, column)
            else:
                container.append(_unquote(rest) if rest else None)
                skip_deeper_than = indent
        elif isinstance(container, dict):
            put_key(container, body, indent)
    return root


@cache
def openapi() -> dict[str, Any]:
    return read_block_yaml((SHARED / "openapi.yaml").read_text(encoding="utf-8"))


def resolve(ref: str) -> Any:
    node: Any = openapi()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def schema_properties(schema: Any, depth: int = 0) -> set[str] | None:
    """Top-level property names of a schema (following ``$ref``, ``allOf``, ``anyOf``,
    ``oneOf``); ``None`` when not resolvable."""
    if depth > 20 or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return schema_properties(resolve(schema["$ref"]), depth + 1)
    names: set[str] = set(schema.get("properties") or {})
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator) or []:
            sub_names = schema_properties(sub, depth + 1)
            if sub_names is None:
                return None
            names |= sub_names
    return names


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The ``paths`` template and operation object matching a request to ``/v1/...``."""
    relative = path.removeprefix("/v1")
    for template, item in openapi()["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, relative) and isinstance(item, dict) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} matches no operation of openapi.yaml")


def request_body_keys_allowed(operation: dict[str, Any], content_type: str) -> set[str] | None:
    body = operation.get("requestBody")
    if isinstance(body, dict) and "$ref" in body:
        body = resolve(body["$ref"])
    if not isinstance(body, dict):
        return None
    media = (body.get("content") or {}).get(content_type)
    return schema_properties(media.get("schema")) if isinstance(media, dict) else None


# -- the operations -----------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "Hello!"}]
#: operation -> (params, our own fixture used when no published example exists)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "chat.completions.create": (
        {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.5,
         "max_completion_tokens": 50, "response_format": {"type": "text"}, "store": False,
         "metadata": {"a": "b"}},
        "chat.completions.create.json"),
    "completions.create": (
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7,
         "temperature": 0}, "completions.create.json"),
    "embeddings.create": (
        {"model": "text-embedding-3-small", "input": "hello", "encoding_format": "float"},
        "embeddings.create.json"),
    "images.generate": (
        {"prompt": "A cute baby sea otter", "model": "gpt-image-1", "n": 1, "size": "1024x1024"},
        "images.generate.json"),
    "models.list": ({}, "models.list.json"),
    "models.retrieve": ({"model": "gpt-4o-mini"}, "models.retrieve.json"),
    "files.create": (
        {"content": "{}\n", "filename": "batch.jsonl", "purpose": "batch"}, "files.create.json"),
    "files.retrieve": ({"file_id": "file-abc123"}, "files.create.json"),
    "files.list": ({"purpose": "batch", "limit": 10, "order": "desc"}, "files.list.json"),
    "batches.create": (
        {"input_file_id": "file-abc123", "endpoint": "/v1/chat/completions",
         "metadata": {"customer_id": "u1"}}, "batches.create.json"),
    "batches.retrieve": ({"batch_id": "batch_abc123"}, "batches.create.json"),
    "responses.create": (
        {"model": "gpt-4.1", "input": "Tell me a story.", "instructions": "Be brief.",
         "max_output_tokens": 100, "store": True}, "responses.create.json"),
}


def bodies_for(name: str) -> list[Path]:
    """The published example bodies for an operation, else our own fixture."""
    published = sorted(SHARED.glob(f"{name}.response*.json"))
    return published or [FIXTURES / CASES[name][1]]


def test_every_operation_has_a_case():
    assert set(CASES) == set(OpenAI.operations())


def test_reader_finds_the_documented_operations():
    paths = openapi()["paths"]
    assert "post" in paths["/chat/completions"] and "get" in paths["/models/{model}"]
    assert paths["/chat/completions"]["post"]["operationId"] == "createChatCompletion"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_operation_conforms(httpserver, name: str):
    params, _ = CASES[name]
    integration = OpenAI(credential="sk-test", base_url=httpserver.url_for("/v1"))
    op = integration.operations()[name]
    for path in bodies_for(name):
        served = json.loads(path.read_text())
        httpserver.clear()
        httpserver.expect_request(re.compile("^/v1/")).respond_with_json(served)
        result = op.fn(integration.client(), op.validate(name, params), TASK)
        assert isinstance(result, OperationResult)
        assert result.output == served, path.name

        assert len(httpserver.log) == 1
        request = httpserver.log[0][0]
        template, operation = find_operation(request.method, request.path)
        if request.mimetype == "multipart/form-data":
            sent = set(request.form) | set(request.files)
        elif request.get_data():
            sent = set(json.loads(request.get_data()))
        else:
            sent = set()
        allowed = request_body_keys_allowed(operation, request.mimetype)
        if sent:
            assert allowed is not None, f"{template}: request schema not resolvable"
            assert sent <= allowed, f"{template}: keys not in the schema: {sent - allowed}"
        if request.method == "POST":
            assert request.headers["Idempotency-Key"] == TASK.idempotency_key


#: POST operations -> (method, path) they call; their param models must use only schema keys.
POST_PATHS = {
    "chat.completions.create": "/v1/chat/completions",
    "completions.create": "/v1/completions",
    "embeddings.create": "/v1/embeddings",
    "images.generate": "/v1/images/generations",
    "files.create": "/v1/files",
    "batches.create": "/v1/batches",
    "responses.create": "/v1/responses",
}
#: params of ours that are not request-body keys (files.create builds ``file`` from them)
OWN_PARAMS = {"files.create": ({"content", "filename", "encoding"}, {"file"})}


@pytest.mark.parametrize("name", sorted(POST_PATHS))
def test_every_param_we_accept_is_in_the_request_schema(name: str):
    _, operation = find_operation("POST", POST_PATHS[name])
    media = "multipart/form-data" if name == "files.create" else "application/json"
    allowed = request_body_keys_allowed(operation, media)
    assert allowed is not None
    fields = set(OpenAI.operations()[name].params.model_fields)
    ours, adds = OWN_PARAMS.get(name, (set(), set()))
    assert (fields - ours) | adds <= allowed, (fields - ours) - allowed

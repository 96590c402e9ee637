"""OpenAI operations through the real ``openai`` SDK against a local HTTP server.

Each test checks the request an operation sends (method, path, body, ``Idempotency-Key``, auth),
that the task's output is the API's JSON body as served, and that usage and rate-limit headers
become task properties. Fixture bodies are ours, shaped after OpenAI's documented examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trigger_celery import ValidationError, retry
from trigger_celery.integration import OperationResult, TaskInfo
from trigger_celery_openai import OpenAI, properties_from_response

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "sk-test-secret-key-123"
IDEMPOTENCY_KEY = "ab" * 32
TASK = TaskInfo(run_id="run-1", key="k", idempotency_key=IDEMPOTENCY_KEY, name="openai",
                attempts=1)
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-tokens": "6m0s",
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest.fixture
def server(httpserver):
    yield httpserver
    httpserver.check_assertions()


@pytest.fixture
def openai_integration(server) -> OpenAI:
    return OpenAI(credential=API_KEY, base_url=server.url_for("/v1"), organization="org-test")


def run(integration: OpenAI, name: str, **params: Any) -> OperationResult:
    op = integration.operations()[name]
    validated = op.validate(f"openai.{name}", params)
    result = op.fn(integration.client(), validated, TASK)
    assert isinstance(result, OperationResult)
    return result


def sent(server) -> Any:
    """The one request the server received."""
    assert len(server.log) == 1, server.log
    return server.log[0][0]


POST_HEADERS = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": IDEMPOTENCY_KEY,
                "OpenAI-Organization": "org-test"}


# -- integration shape --------------------------------------------------------------------------


def test_integration_declares_ids_retry_and_operations():
    assert (OpenAI.id, OpenAI.icon, OpenAI.credential_env) == ("openai", "openai",
                                                               "OPENAI_API_KEY")
    assert OpenAI.retry == retry.standard_backoff
    assert sorted(OpenAI.operations()) == sorted([
        "chat.completions.create", "completions.create", "embeddings.create", "images.generate",
        "models.list", "models.retrieve", "files.create", "files.retrieve", "files.list",
        "batches.create", "batches.retrieve", "responses.create",
    ])


def test_sdk_client_has_retries_off_and_key_never_in_reprs(openai_integration):
    client = openai_integration.client()
    assert client.max_retries == 0
    assert API_KEY not in repr(openai_integration)
    assert API_KEY not in repr(client)


def test_key_read_from_environment(monkeypatch, server):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    server.expect_oneshot_request(
        "/v1/models", method="GET", headers={"Authorization": f"Bearer {API_KEY}"},
    ).respond_with_json(fixture("models.list.json"))
    integration = OpenAI(base_url=server.url_for("/v1"))
    assert run(integration, "models.list").output == fixture("models.list.json")


# -- POST operations ----------------------------------------------------------------------------


def test_chat_completions_create(server, openai_integration):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}],
            "temperature": 0.2}
    server.expect_oneshot_request(
        "/v1/chat/completions", method="POST", json=body, headers=POST_HEADERS,
    ).respond_with_json(fixture("chat.completions.create.json"), headers=RATE_LIMIT_HEADERS)
    result = run(openai_integration, "chat.completions.create", **body)
    assert result.output == fixture("chat.completions.create.json")
    assert result.properties == [
        {"label": "Prompt Usage", "text": "19"},
        {"label": "Completion Usage", "text": "10"},
        {"label": "Total Usage", "text": "29"},
        {"label": "Rate Limit Requests", "text": "59/60"},
        {"label": "Rate Limit Requests Reset", "text": "1s"},
        {"label": "Rate Limit Tokens", "text": "149984/150000"},
        {"label": "Rate Limit Tokens Reset", "text": "6m0s"},
    ]
    op = OpenAI.operations()["chat.completions.create"]
    assert op.display_name(op.validate("x", body)) == "Chat completion (gpt-4o-mini)"


def test_chat_keeps_null_inside_messages(server, openai_integration):
    messages = [{"role": "user", "content": "Hi"},
                {"role": "assistant", "content": None, "tool_calls": []}]
    server.expect_oneshot_request(
        "/v1/chat/completions", method="POST", json={"model": "m", "messages": messages},
    ).respond_with_json(fixture("chat.completions.create.json"))
    run(openai_integration, "chat.completions.create", model="m", messages=messages)


def test_chat_rejects_unknown_and_stream_params_before_any_request(openai_integration):
    with pytest.raises(ValidationError, match="stream"):
        run(openai_integration, "chat.completions.create", model="m",
            messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(ValidationError, match="messages"):
        run(openai_integration, "chat.completions.create", model="m", messages=[])


def test_completions_create(server, openai_integration):
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7}
    server.expect_oneshot_request(
        "/v1/completions", method="POST", json=body, headers=POST_HEADERS,
    ).respond_with_json(fixture("completions.create.json"))
    result = run(openai_integration, "completions.create", **body)
    assert result.output == fixture("completions.create.json")
    assert {"label": "Total Usage", "text": "12"} in result.properties


def test_embeddings_create(server, openai_integration):
    body = {"model": "text-embedding-3-small", "input": ["hello", "world"],
            "encoding_format": "float", "dimensions": 3}
    server.expect_oneshot_request(
        "/v1/embeddings", method="POST", json=body, headers=POST_HEADERS,
    ).respond_with_json(fixture("embeddings.create.json"))
    result = run(openai_integration, "embeddings.create", **body)
    assert result.output == fixture("embeddings.create.json")
    assert result.properties == [{"label": "Prompt Usage", "text": "8"},
                                 {"label": "Total Usage", "text": "8"}]


def test_images_generate(server, openai_integration):
    body = {"prompt": "A cute otter", "model": "gpt-image-1", "n": 1, "size": "1024x1024"}
    server.expect_oneshot_request(
        "/v1/images/generations", method="POST", json=body, headers=POST_HEADERS,
    ).respond_with_json(fixture("images.generate.json"))
    result = run(openai_integration, "images.generate", **body)
    assert result.output == fixture("images.generate.json")
    assert {"label": "Input Usage", "text": "50"} in result.properties


def test_files_create_uploads_multipart(server, openai_integration):
    content = '{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions"}\n'
    server.expect_oneshot_request(
        "/v1/files", method="POST", headers=POST_HEADERS,
    ).respond_with_json(fixture("files.create.json"))
    result = run(openai_integration, "files.create", content=content, filename="batch.jsonl",
                 purpose="batch")
    assert result.output == fixture("files.create.json")
    request = sent(server)
    assert request.mimetype == "multipart/form-data"
    assert request.form.to_dict() == {"purpose": "batch"}
    upload = request.files["file"]
    assert upload.filename == "batch.jsonl"
    assert upload.read().decode() == content


def test_files_create_base64_content(server, openai_integration):
    server.expect_oneshot_request("/v1/files", method="POST").respond_with_json(
        fixture("files.create.json"))
    run(openai_integration, "files.create", content="AAEC/w==", encoding="base64",
        filename="blob.bin", purpose="user_data")
    assert sent(server).files["file"].read() == b"\x00\x01\x02\xff"
    with pytest.raises(ValidationError, match="base64"):
        run(openai_integration, "files.create", content="not base64!", encoding="base64",
            filename="x", purpose="user_data")


def test_batches_create(server, openai_integration):
    body = {"input_file_id": "file-abc123", "endpoint": "/v1/chat/completions",
            "completion_window": "24h", "metadata": {"customer_id": "user_123456789"}}
    server.expect_oneshot_request(
        "/v1/batches", method="POST", json=body, headers=POST_HEADERS,
    ).respond_with_json(fixture("batches.create.json"))
    result = run(openai_integration, "batches.create", input_file_id="file-abc123",
                 endpoint="/v1/chat/completions", metadata={"customer_id": "user_123456789"})
    assert result.output == fixture("batches.create.json")


def test_responses_create(server, openai_integration):
    body = {"model": "gpt-4.1", "input": "Tell me a story.", "instructions": "Be brief."}
    server.expect_oneshot_request(
        "/v1/responses", method="POST", json=body, headers=POST_HEADERS,
    ).respond_with_json(fixture("responses.create.json"), headers=RATE_LIMIT_HEADERS)
    result = run(openai_integration, "responses.create", **body)
    assert result.output == fixture("responses.create.json")
    assert result.properties[:3] == [{"label": "Input Usage", "text": "36"},
                                     {"label": "Output Usage", "text": "87"},
                                     {"label": "Total Usage", "text": "123"}]


# -- GET operations -----------------------------------------------------------------------------


def test_models_list_and_retrieve(server, openai_integration):
    server.expect_oneshot_request("/v1/models", method="GET").respond_with_json(
        fixture("models.list.json"))
    server.expect_oneshot_request("/v1/models/gpt-4o-mini", method="GET").respond_with_json(
        fixture("models.retrieve.json"), headers=RATE_LIMIT_HEADERS)
    assert run(openai_integration, "models.list").output == fixture("models.list.json")
    result = run(openai_integration, "models.retrieve", model="gpt-4o-mini")
    assert result.output == fixture("models.retrieve.json")
    assert {"label": "Rate Limit Requests", "text": "59/60"} in result.properties
    # reads carry no idempotency key
    assert all("Idempotency-Key" not in req.headers for req, _ in server.log)


def test_files_retrieve_and_list(server, openai_integration):
    server.expect_oneshot_request("/v1/files/file-abc123", method="GET").respond_with_json(
        fixture("files.create.json"))
    server.expect_oneshot_request(
        "/v1/files", method="GET",
        query_string={"purpose": "batch", "limit": "10", "order": "desc", "after": "file-0"},
    ).respond_with_json(fixture("files.list.json"))
    assert run(openai_integration, "files.retrieve", file_id="file-abc123").output == fixture(
        "files.create.json")
    out = run(openai_integration, "files.list", purpose="batch", limit=10, order="desc",
              after="file-0").output
    assert out == fixture("files.list.json")


def test_batches_retrieve(server, openai_integration):
    server.expect_oneshot_request("/v1/batches/batch_abc123", method="GET").respond_with_json(
        fixture("batches.create.json"))
    assert run(openai_integration, "batches.retrieve", batch_id="batch_abc123").output == fixture(
        "batches.create.json")


# -- properties helper --------------------------------------------------------------------------


def test_properties_from_response_without_usage_or_headers():
    assert properties_from_response({}, {"object": "list"}) == []
    assert properties_from_response({"x-ratelimit-remaining-requests": "0"}, None) == [
        {"label": "Rate Limit Requests", "text": "0"}]

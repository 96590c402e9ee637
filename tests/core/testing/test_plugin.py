"""The testing kit's pytest fixtures, used as a user's own tests would."""

from __future__ import annotations

import redis


def test_fixtures_run_a_users_job_against_the_replay_server(
        trigger_redis_url, trigger_replay_server, trigger_worker, monkeypatch):
    trigger_replay_server.add("GET", "/users/octocat", body={"login": "octocat", "id": 1})
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_URL", trigger_redis_url)
    monkeypatch.setenv("TRIGGER_CELERY_BROKER_URL", trigger_redis_url)
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_CLUSTER", "false")  # one database, cluster pass too
    trigger_worker("tests.kit.user_app", GITHUB_TOKEN="kit-token",
                   KIT_GITHUB_URL=trigger_replay_server.base_url)
    from trigger_celery import TriggerClient

    client = TriggerClient("kit-user", runs_queue="kit-user")  # enqueues via the job registry
    assert client.trigger("who", {"user": "octocat"}).result(timeout=30) == "octocat"
    (request,) = trigger_replay_server.requests
    assert request.path == "/users/octocat"
    assert redis.Redis.from_url(trigger_redis_url).exists("tc:jobs")

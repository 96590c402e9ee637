"""Event triggers for GitHub webhooks, as Trigger.dev's ``@trigger.dev/github`` offered them.

Each ``on_*`` function returns ``event_trigger(name, filter=...)``: the event name that
:mod:`~trigger_celery_github.webhooks` gives the delivery (``github.issues.opened``)
and a Trigger.dev EventFilter (a nested dict mirroring the payload whose leaves list the allowed
values) that keeps only deliveries for one repository. The ``*_spec`` functions return the same
``(name, filter)`` without importing the engine.
"""

from __future__ import annotations

import re
from typing import Any

from trigger_celery import ConfigurationError
from trigger_celery_github._common import OWNER_PATTERN, REPO_PATTERN

Spec = tuple[str, dict[str, Any]]

_ACTION = re.compile(r"^[a-z][a-z_]*$")


def _repo_filter(owner: str, repo: str) -> dict[str, Any]:
    if not re.match(OWNER_PATTERN, owner) or not re.match(REPO_PATTERN, repo):
        raise ConfigurationError(f"github trigger: bad repository {owner!r}/{repo!r}")
    return {"repository": {"full_name": [f"{owner}/{repo}"]}}


def _action(action: str) -> str:
    if not _ACTION.match(action):
        raise ConfigurationError(f"github trigger: bad action {action!r}")
    return action


def issue_opened_spec(owner: str, repo: str) -> Spec:
    """``github.issues.opened`` for ``owner/repo``."""
    return "github.issues.opened", _repo_filter(owner, repo)


def issue_comment_spec(owner: str, repo: str, action: str = "created") -> Spec:
    """``github.issue_comment.<action>`` (created, edited, deleted) for ``owner/repo``."""
    return f"github.issue_comment.{_action(action)}", _repo_filter(owner, repo)


def new_star_spec(owner: str, repo: str) -> Spec:
    """``github.star.created`` for ``owner/repo``."""
    return "github.star.created", _repo_filter(owner, repo)


def push_spec(owner: str, repo: str) -> Spec:
    """``github.push`` (push payloads have no action) for ``owner/repo``."""
    return "github.push", _repo_filter(owner, repo)


def pull_request_spec(owner: str, repo: str, action: str = "opened") -> Spec:
    """``github.pull_request.<action>`` (opened, closed, synchronize, ...) for ``owner/repo``."""
    return f"github.pull_request.{_action(action)}", _repo_filter(owner, repo)


def _event_trigger(spec: Spec) -> Any:
    from trigger_celery import event_trigger  # the engine; imported only when used

    name, filter_ = spec
    return event_trigger(name, filter=filter_)


def on_issue_opened(owner: str, repo: str) -> Any:
    """Trigger on issues opened in ``owner/repo``."""
    return _event_trigger(issue_opened_spec(owner, repo))


def on_issue_comment(owner: str, repo: str, action: str = "created") -> Any:
    """Trigger on issue (and pull request) comments in ``owner/repo``."""
    return _event_trigger(issue_comment_spec(owner, repo, action))


def on_new_star(owner: str, repo: str) -> Any:
    """Trigger on new stars of ``owner/repo``."""
    return _event_trigger(new_star_spec(owner, repo))


def on_push(owner: str, repo: str) -> Any:
    """Trigger on pushes to ``owner/repo``."""
    return _event_trigger(push_spec(owner, repo))


def on_pull_request(owner: str, repo: str, action: str = "opened") -> Any:
    """Trigger on pull request activity in ``owner/repo``."""
    return _event_trigger(pull_request_spec(owner, repo, action))

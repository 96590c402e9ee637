"""Jobs calling OpenAI and Typeform through their integrations, for real workers.

Base URLs come from ``TESTS_OPENAI_BASE_URL`` / ``TESTS_TYPEFORM_BASE_URL`` (a local server);
credentials from ``OPENAI_API_KEY`` / ``TYPEFORM_TOKEN`` on the worker only.
"""

from __future__ import annotations

import os

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery_openai import OpenAI
from trigger_celery_typeform import Typeform

client = TriggerClient("tests-providers", runs_queue="tests-providers")
celery = client.celery

openai = OpenAI(base_url=os.environ.get("TESTS_OPENAI_BASE_URL", "http://127.0.0.1:9/v1"))
typeform = Typeform(base_url=os.environ.get("TESTS_TYPEFORM_BASE_URL", "http://127.0.0.1:9"))


@client.define_job(id="summarize", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"openai": openai})
def summarize(payload, io, ctx):
    completion = io.openai.chat.completions.create(
        "summarize", model="gpt-4o-mini",
        messages=[{"role": "user", "content": payload["text"]}])
    return completion["choices"][0]["message"]["content"]


@client.define_job(id="all-responses", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"typeform": typeform})
def all_responses(payload, io, ctx):
    result = io.typeform.responses.all("responses", uid=payload["uid"],
                                       page_size=payload["page_size"])
    return [item["token"] for item in result["items"]]

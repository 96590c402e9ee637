"""A form example (deployed by docker-compose.ha.yml): each Typeform response is summarised by
OpenAI, so the app has a job on every integration queue (``github``, ``openai``, ``typeform``).

The form is ``EXAMPLES_FORM_ID``; the model ``EXAMPLES_OPENAI_MODEL``. Credentials come from the
workers' environment: ``TYPEFORM_TOKEN`` on the typeform workers, ``OPENAI_API_KEY`` on the
openai workers.
"""

from __future__ import annotations

import json
import os
from typing import Any

from examples.app import client
from trigger_celery_openai import OpenAI
from trigger_celery_typeform import Typeform, on_form_response

FORM_ID = os.environ.get("EXAMPLES_FORM_ID", "lT4Z3j")
MODEL = os.environ.get("EXAMPLES_OPENAI_MODEL", "gpt-4o-mini")

typeform = Typeform()
openai = OpenAI()


@client.define_job(id="form-summary", name="Summarise a form response", version="1.0.0",
                   trigger=on_form_response(FORM_ID),
                   integrations={"typeform": typeform, "openai": openai})
def form_summary(payload: dict[str, Any], io: Any, ctx: Any) -> dict[str, Any]:
    """``payload``: Typeform's ``form_response`` webhook body. Returns the form's title and a
    one-sentence summary of the answers."""
    answers = payload["form_response"].get("answers", [])
    form = io.typeform.forms.get("form", uid=FORM_ID)
    reply = io.openai.chat.completions.create(
        "summary", model=MODEL,
        messages=[{"role": "system", "content": "Summarise this form response in one sentence."},
                  {"role": "user", "content": json.dumps({"form": form.get("title"),
                                                          "answers": answers})}])
    choices = reply.get("choices") or [{}]
    return {"form": form.get("title"),
            "summary": (choices[0].get("message") or {}).get("content")}

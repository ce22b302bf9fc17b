"""One chat call to the drafting model: the request, its cost and the budget.

The endpoint speaks OpenAI's chat completions API (``POST
{endpoint}/chat/completions``), the convention of llama.cpp's server,
Ollama, vLLM, LM Studio and hosted providers; the call goes through the
official ``openai`` client. The answer is asked for as JSON under a JSON
schema (``response_format`` of type ``json_schema``); a server that refuses
that (HTTP 400) is asked once more without it, the schema then only in the
prompt, and the answer is validated either way (`engine.drafting.answers`).

The key is read from the environment variable the settings name and never
stored; every message from the server is sanitised and redacted
(`engine.redaction`). Before the call, its cost at most (the prompt's
characters as tokens plus ``max_tokens``, at the price table's rates) is
checked against the story's budget (`engine.budget.check_budget`); after
it, the tokens the server reports are priced and recorded (`kg.model_calls`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from engine.budget import check_budget
from engine.drafting.answers import request_schema
from engine.redaction import outside_text, redact, remember_secret
from kg.model_calls import DraftingPurpose, ModelCall
from kg.schema import Story
from kg.settings import DraftingSettings, TokenPrice
from kg.take import TakeCost

__all__ = ["ChatAnswer", "DraftingError", "chat", "cost_estimate", "is_local"]

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
Messages = list[dict[str, str]]


class DraftingError(Exception):
    """The call could not be made or answered; the message says what to do."""


@dataclass(frozen=True)
class ChatAnswer:
    """What the model answered, and the record of the call."""

    content: str
    call: ModelCall
    structured: bool  # whether the server took the JSON schema


def is_local(endpoint: str) -> bool:
    """An endpoint on this machine (a local server costs nothing)."""
    return (urlsplit(endpoint).hostname or "") in _LOCAL_HOSTS


def _price(settings: DraftingSettings) -> TokenPrice | None:
    price = settings.prices.get(settings.model)
    if price is None and is_local(settings.endpoint):
        return TokenPrice()
    return price


def cost_estimate(
    settings: DraftingSettings, messages: Messages
) -> tuple[float, str] | None:
    """The call's cost at most, and how it was worked out; None without a
    price for the model."""
    price = _price(settings)
    if price is None:
        return None
    # about 4 characters a token in English; 3 keeps this an upper bound
    prompt = sum(len(m["content"]) for m in messages) // 3 + 16
    usd = (prompt * price.input + settings.max_tokens * price.output) / 1e6
    return usd, (
        f"about {prompt:,} prompt tokens and at most {settings.max_tokens:,} "
        f"answer tokens at ${price.input:g}/${price.output:g} per million"
    )


def _cost(settings: DraftingSettings, prompt: int, completion: int) -> TakeCost | None:
    price = _price(settings)
    if price is None:
        return None
    usd = (prompt * price.input + completion * price.output) / 1e6
    return TakeCost(
        usd=usd,
        source=(
            f"{prompt:,} prompt and {completion:,} answer tokens at "
            f"${price.input:g}/${price.output:g} per million ({settings.model})"
        ),
    )


def _client(settings: DraftingSettings) -> Any:
    from openai import OpenAI

    key = os.environ.get(settings.api_key_env, "")
    remember_secret(key)
    return OpenAI(
        base_url=settings.endpoint,
        # local servers take any key; the client needs one
        api_key=key or "no-key",
        timeout=float(settings.timeout_s),
        max_retries=1,
    )


def _create(client: Any, request: dict[str, Any], endpoint: str) -> Any:
    import openai

    try:
        return client.chat.completions.create(**request)
    except openai.APITimeoutError:
        raise DraftingError(
            f"{endpoint} did not answer in time; raise the timeout or use a "
            "smaller model"
        ) from None
    except openai.APIConnectionError as exc:
        raise DraftingError(
            f"could not reach {endpoint} ({redact(exc)[:200]}); start the "
            "model server or correct Settings, Drafting endpoint"
        ) from None
    except openai.BadRequestError:
        raise
    except openai.APIStatusError as exc:
        raise DraftingError(
            f"{endpoint} answered HTTP {exc.status_code}: "
            f"{outside_text(exc.response.text)}"
        ) from None


def chat(
    settings: DraftingSettings,
    messages: Messages,
    answer: type[BaseModel],
    purpose: DraftingPurpose,
    story: Story | None = None,
) -> ChatAnswer:
    """Ask the drafting model; ``story`` holds the budget the call counts
    against. Raises `DraftingError` (and `engine.errors.BudgetExceededError`
    before anything is sent)."""
    import openai

    if not settings.model:
        raise DraftingError(
            "no drafting model: name it in Settings, Drafting model (the model "
            "your server serves, e.g. llama3.1 for Ollama)"
        )
    if story is not None:
        check_budget(story, cost_estimate(settings, messages), "the drafting call")
    client = _client(settings)
    request: dict[str, Any] = {
        "model": settings.model,
        "messages": messages,
        "max_tokens": settings.max_tokens,
        "temperature": 0.7,
    }
    schema = {"name": answer.__name__, "schema": request_schema(answer), "strict": True}
    structured = True
    try:
        response = _create(
            client,
            {
                **request,
                "response_format": {"type": "json_schema", "json_schema": schema},
            },
            settings.endpoint,
        )
    except openai.BadRequestError:
        structured = False  # no structured output here: the prompt has the schema
        try:
            response = _create(client, request, settings.endpoint)
        except openai.BadRequestError as exc:
            raise DraftingError(
                f"{settings.endpoint} refused the request: "
                f"{outside_text(exc.response.text)}"
            ) from None
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    call = ModelCall(
        purpose=purpose,
        model=settings.model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=_cost(settings, prompt, completion),
    )
    choices = getattr(response, "choices", None) or []
    content = (choices[0].message.content or "") if choices else ""
    if choices and choices[0].finish_reason == "length":
        content = ""  # cut at max_tokens: never half an answer
        call = call.model_copy(
            update={
                "outcome": "refused",
                "message": "the answer was cut at "
                f"{settings.max_tokens} tokens; raise max_tokens",
            }
        )
    return ChatAnswer(content, call, structured)

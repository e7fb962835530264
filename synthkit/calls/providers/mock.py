"""llm=mock: schema-valid placeholder answers with no network and no key. The answers go
through the same parse and validate path as a real model's."""

import hashlib
import json

from synthkit.calls.providers.base import Completion
from synthkit.core.record import PLACEHOLDER_MODEL


class MockProvider:
    model_name = PLACEHOLDER_MODEL
    placeholder = True

    async def complete(self, messages: list, schema: dict, schema_name: str, max_tokens=None) -> Completion:
        # Derived from the prompt so that different rows get different placeholder text.
        tag = hashlib.sha256(messages[0]["content"].encode()).hexdigest()[:10]
        answer = {key: _placeholder(key, spec, tag) for key, spec in schema["properties"].items()}
        text = json.dumps(answer, ensure_ascii=False)
        # Words stand in for tokens, so budgets and progress can be tried offline.
        return Completion(text, sum(len(m["content"].split()) for m in messages), len(text.split()))

    async def aclose(self) -> None:
        pass


def _placeholder(key: str, spec: dict, tag: str):
    if "enum" in spec:
        return spec["enum"][0]
    kind = spec.get("type", "string")
    if kind == "array":
        count = max(spec.get("minItems", 0), 3)
        return [_placeholder(f"{key} {i}", spec.get("items", {}), tag) for i in range(count)]
    if kind in ("number", "integer"):
        return spec.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "object":
        return {k: _placeholder(k, s, tag) for k, s in spec.get("properties", {}).items()}
    return f"placeholder {key} {tag}"

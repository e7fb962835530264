"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

    python tests/openai_server.py [--port 0] [--latency-ms 0] [--log requests.jsonl] [--plan JSON]

prints `READY <port>` once it listens. Answers are built from the request's JSON schema
(`response_format`), so any task gets schema-valid rows; a prompt that offers "- " choices after "Choose" gets its
first choice in the first field, and a query about a fenced passage one of the passage's words. A *plan* scripts what it answers:

    {"default": ["malformed", "valid"],                     # n-th ask of a conversation -> n-th step
     "rules": [{"match": "phrase", "sequence": ["fenced"]}], # first rule whose text is in the prompt wins
     "faults": {"rate": 0.2, "steps": ["status:429", "status:500"], "seed": 1},
     "first": ["text:..."]}                                  # the server's first answers, whatever is asked

A conversation is keyed by its first user message, so a re-ask gets the next step; the last
step repeats. Steps: valid, fenced, malformed, missing_key, wrong_type, empty, drop (close the
connection), sleep:<s> (then valid), status:<code>[:<retry-after>], text:<answer>, truncated (half of a
valid answer, finish_reason "length"), html (a 200 whose body is an HTML page), refuse:<code>:<message>
(an OpenAI-style error with that message), nested:<depth> (an answer nested that deep), big:<chars>
(a valid answer padded to that many characters), rate:<text> (a relabelling judge that reads the passages: of
the prompt's last k fenced blocks, k the ratings its schema asks for, those holding <text> are rated 3, the
others 0, in whatever order they are shown).
POST /_plan replaces the plan and resets counters; GET /_stats returns counters; POST /_reset
{"plan": ..., "latency_ms": ...} starts afresh (plan, latency, counters, log), so tests can share a server.
"""

import argparse
import asyncio
import hashlib
import json
import random
import re
import sys
import time

from aiohttp import web


def build(schema: dict, tag: str, key: str = "value", words: int = 8):
    """A schema-valid value whose strings differ per prompt (`tag`), so rows are distinct. Strings
    are the key and numbers: no natural language to identify, `words` words long."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: build(s, tag, k, words) for k, s in props.items()}
    if kind == "array":
        return [
            build(schema.get("items", {}), tag, f"{key} {i}", words) for i in range(max(schema.get("minItems", 0), 2))
        ]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    seed = int(hashlib.sha256(f"{tag}{key}".encode()).hexdigest(), 16)
    if "query" in key:  # "at least N words" asks for documents: a query stays short, as its length check wants
        words = min(words, 8)
    # Numbers that never run out: a long text of the seed's bits alone ends in "0 0 0 ...", a loop the checks reject
    return f"{key} {tag} " + " ".join(
        str(((seed >> (7 * (i % 36))) + 7919 * i) % 9973) for i in range(max(words - 2, 1))
    )


def _choices(prompt: str) -> list:
    """The "- item" lines after a line that says "Choose": the options a prompt offers (persona_retrieval)."""
    _, found, after = prompt.partition("Choose")
    if not found:
        return []
    lines = after.splitlines()[1:]
    items = [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]
    return items


class Plan:
    def __init__(self, plan: dict | None):
        plan = plan or {}
        self.default = plan.get("default") or ["valid"]
        self.rules = plan.get("rules") or []
        faults = plan.get("faults") or {}
        self.fault_rate = faults.get("rate", 0.0)
        self.fault_steps = faults.get("steps") or []
        self.rng = random.Random(faults.get("seed", 0))
        self.first = list(plan.get("first") or [])  # steps for the server's first requests, whatever they ask
        self.asks: dict[str, int] = {}

    def step(self, prompt: str) -> tuple[str, int]:
        """The step for this ask of `prompt`, and how many times it was asked before."""
        sequence = self.default
        for rule in self.rules:
            if rule["match"] in prompt:
                sequence = rule["sequence"]
                break
        n = self.asks.get(prompt, 0)
        self.asks[prompt] = n + 1
        if self.first:
            return self.first.pop(0), n
        if self.fault_steps and self.rng.random() < self.fault_rate:
            return self.rng.choice(self.fault_steps), n
        return sequence[min(n, len(sequence) - 1)], n


class Server:
    def __init__(self, latency_ms: float, log_path: str | None, plan: dict | None):
        self.latency = latency_ms / 1000
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None
        self.plan = Plan(plan)
        self.stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "by_step": {}}

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        received = time.time()
        messages = body.get("messages") or [{}]
        prompt = messages[0].get("content") or ""
        step, asked_before = self.plan.step(prompt)
        stats = self.stats
        stats["requests"] += 1
        stats["by_step"][step.split(":")[0]] = stats["by_step"].get(step.split(":")[0], 0) + 1
        if self.log:
            record = {"t": received, "step": step, "auth": request.headers.get("Authorization", ""), "body": body}
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self.answer(request, body, step, asked_before)
        finally:
            stats["in_flight"] -= 1

    async def answer(self, request: web.Request, body: dict, step: str, asked_before: int) -> web.StreamResponse:
        kind, _, arg = step.partition(":")
        if kind == "status":
            code, _, retry_after = arg.partition(":")
            headers = {"Retry-After": retry_after or "1"} if code == "429" else {}
            error = {"error": {"message": f"injected status {code}", "type": "injected", "code": code}}
            return web.json_response(error, status=int(code), headers=headers)
        if kind == "refuse":
            code, _, message = arg.partition(":")
            error = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
            return web.json_response(error, status=int(code))
        if kind == "html":
            return web.Response(text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")
        if kind == "drop":
            request.transport.close()
            return web.Response()
        if kind == "sleep":
            await asyncio.sleep(float(arg))
            kind = "valid"
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        # Distinct per prompt and per ask, as a sampling model's answers are.
        tag = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()[:10] + f"{asked_before:02d}"
        # As long as the prompt asks ("at least 300 words"), so that length checks pass.
        words = max([8] + [int(n) for n in re.findall(r"at least (\d+) words", body["messages"][0].get("content", ""))])
        valid = build({"type": "object", **schema}, tag, words=words) if schema else {"answer": f"text {tag}"}
        prompt = body["messages"][0].get("content", "")
        about = re.search(r"<(data-[0-9a-f]+)>\n.*?([^\W\d_]{5,})", prompt, re.DOTALL)
        if about and isinstance(valid, dict):  # a query about a fenced passage names one of its words, as one would
            valid.update({k: f"{v} {about.group(2)}" for k, v in valid.items() if "query" in k and isinstance(v, str)})
        choices = _choices(prompt)
        if choices and valid:  # a prompt that offers choices gets its first one, as written, in the first field
            valid[next(iter(valid))] = choices[0]
        if kind == "text":
            content = arg
        elif kind == "fenced":
            content = "Here you go:\n```json\n" + json.dumps(valid, indent=2) + "\n```"
        elif kind == "malformed":
            content = json.dumps(valid)[:-12]
        elif kind == "missing_key":
            content = json.dumps(dict(list(valid.items())[1:]))
        elif kind == "wrong_type":
            first = next(iter(valid))
            content = json.dumps({**valid, first: 12345})
        elif kind == "empty":
            content = ""
        elif kind == "truncated":
            content = json.dumps(valid)
            content = content[: len(content) // 2]
        elif kind == "nested":
            content = "[" * int(arg) + "]" * int(arg)
        elif kind == "rate":
            k = schema["properties"]["ratings"]["minItems"]
            blocks = re.findall(r"<(data-[0-9a-f]+)>\n(.*?)\n</\1>", body["messages"][0]["content"], re.DOTALL)
            content = json.dumps({"ratings": [3 if arg in text else 0 for _, text in blocks[-k:]]})
        elif kind == "big":
            first = next(iter(valid))
            content = json.dumps({**valid, first: "x " * (int(arg) // 2)})
        else:
            content = json.dumps(valid, ensure_ascii=False)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return web.json_response(
            {
                "id": "chatcmpl-" + tag,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "test-model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "length" if kind == "truncated" else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_words,
                    "completion_tokens": len(content.split()),
                    "total_tokens": prompt_words + len(content.split()),
                },
            }
        )

    async def set_plan(self, request: web.Request) -> web.Response:
        self.plan = Plan(await request.json())
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.plan = Plan(body.get("plan"))
        self.latency = (body.get("latency_ms") or 0) / 1000
        self.stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "by_step": {}}
        if self.log:
            self.log.close()
            self.log = open(self.log.name, "w", encoding="utf-8")
        return web.json_response({"ok": True})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "test-model", "object": "model"}]})


async def serve(port: int, latency_ms: float, log_path: str | None, plan: dict | None) -> None:
    server = Server(latency_ms, log_path, plan)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", server.completions)
    app.router.add_post("/chat/completions", server.completions)
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/_plan", server.set_plan)
    app.router.add_get("/_stats", server.get_stats)
    app.router.add_post("/_reset", server.reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--log", default=None, help="append one JSON line per request")
    parser.add_argument("--plan", default=None, help="a JSON plan (see the module docstring)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.latency_ms, args.log, json.loads(args.plan) if args.plan else None))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

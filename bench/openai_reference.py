"""The reference for bench.py: the raw openai SDK doing synthkit's work (the same bitext prompts
and JSON schema, one request per row, answers parsed as JSON), with a bounded number in flight.

    python bench/openai_reference.py BASE_URL ROWS CONCURRENCY   -> {"seconds": ...}
"""

import asyncio
import json
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf
from openai import AsyncOpenAI

from synthkit.spec.task import TaskSpec

CONF = Path(__file__).resolve().parent.parent / "conf"


async def main(base_url: str, rows: int, concurrency: int) -> None:
    root = OmegaConf.merge(
        OmegaConf.load(CONF / "languages.yaml"), {"task": OmegaConf.load(CONF / "task" / "bitext_retrieval.yaml")}
    )
    task = TaskSpec(root.task)
    prompts = [task.render(task.draw_attributes(0, row)) for row in range(rows)]
    client = AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0)
    response_format = {"type": "json_schema", "json_schema": {"name": task.name, "schema": task.schema, "strict": True}}
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> dict:
        async with gate:
            response = await client.chat.completions.create(
                model="bench-model",
                messages=[{"role": "user", "content": prompt}],
                temperature=1.0,
                top_p=1.0,
                max_tokens=2048,
                response_format=response_format,
            )
            return json.loads(response.choices[0].message.content)

    await one(prompts[0])  # the client's one-off setup is not part of the measurement
    started = time.perf_counter()
    answers = await asyncio.gather(*(one(p) for p in prompts))
    seconds = time.perf_counter() - started
    assert len(answers) == rows
    await client.close()
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))

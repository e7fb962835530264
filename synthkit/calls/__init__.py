"""Everything between a prompt and an answer: the providers (litellm, the lean HTTP client, mock), and the
call stack around them (caller.py): the response cache, shared rate limits, retries and the circuit breaker,
prices and the budget. Also the building blocks of provider batch APIs and of a Redis store for clusters."""

"""Everything between a prompt and an answer: one caller interface (caller.py) with the online caller (online.py:
cache, shared rate limits, retries, budget) and the batch caller (batch/), the one re-ask loop (conversation.py), the
providers (litellm, the lean HTTP client, mock), prices, and the stores the callers share with other processes
(stores/: files of this machine or a Redis server)."""

"""Provider batch APIs (OpenAI Files + Batches): rounds of requests at half the price."""

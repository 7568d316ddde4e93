"""The model door and what stands around it: the one structured-call path (door), the
OpenAI Batch API (batch), the run's budget (budget), per-endpoint rate limits (rate_limits),
prices (prices) and the embedded offline model (offline)."""

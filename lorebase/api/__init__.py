"""The HTTP API: OpenAI-compatible endpoints and lorebase's own."""

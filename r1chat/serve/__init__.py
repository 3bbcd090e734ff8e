"""`r1chat serve`: the third front end, an OpenAI-compatible HTTP API over the engine."""

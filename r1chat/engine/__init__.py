"""Engines: where tokens come from (llama.cpp in-process, or a remote server)."""

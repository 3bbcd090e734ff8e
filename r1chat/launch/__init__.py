"""The composition root: names and settings in, engines out.

It stands between the front ends (and the session and diagnostics beside them) and the
engines: it resolves a model name to a file (`models.store`), reads its header, sizes it
for the machine (`models.fit`), decides whether llama.cpp may repack weights here
(`repack`), and opens the local engine; or finds which OpenAI-compatible server a setting
names (`remotes`) and opens the remote one. Engines import only `r1chat.core`.
"""

"""The model process: `python -m r1chat.host.child`.

It holds the engine (`host.worker.Worker`), so that a crash inside llama.cpp costs the
replies in progress and not the chat or the server. It speaks `host.frames` frames on
stdin and stdout: in, a `Start` first, then commands (`host.commands`); out, lists of
`(job_id, item)` (`host.outcomes`), written at most every `frames.FRAME_S` while text
streams and at once for what someone waits for (`outcomes.urgent`).

Anything else written to file descriptors 1 and 2 (llama.cpp, Python warnings) goes to
the log, never into the protocol. End of input (the front end exited or was killed)
stops the replies, which are saved as stopped, and ends the process.
"""

from __future__ import annotations

import sys
import threading

from r1chat.host.frames import Outbox, child_streams, read_frame


def main() -> int:
    out = child_streams()
    stdin = sys.stdin.buffer
    from r1chat.host.commands import Start
    from r1chat.host.outcomes import batch, urgent
    from r1chat.host.worker import Worker

    start = read_frame(stdin)
    if not isinstance(start, Start):
        return 2
    outbox = Outbox(out, batch if start.join_text else list, urgent)
    writer = threading.Thread(target=outbox.run, name="r1chat-model-writer", daemon=True)
    writer.start()
    worker = Worker(start, outbox.put)
    while (command := read_frame(stdin)) is not None and worker.handle(command):
        pass
    worker.stop()
    outbox.close()
    writer.join(5.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The chat's model process: `python -m r1chat.session.child HISTORY_DB`.

It runs an `EngineThread` (load, replies, context measures, saving replies to History
as they stream) and talks to the chat over stdin/stdout in length-prefixed pickle frames
(`r1chat.session.childproc.read_frame/write_frame`):

- in: `("load", id, Settings)`, `("reply", id, Request, Guards, message_id, Overflow)`,
  `("measure", id, messages, Request, Overflow)`, `("cancel", id)`, `("quit",)`;
- out: lists of `(id, item)`, the items `EngineThread` puts on its inbox, joined by
  `batch()` and sent at most every `childproc.FRAME_S`.

Anything else written to file descriptors 1 and 2 (llama.cpp, Python warnings) goes to
the log file, never into the protocol. End of input (the chat exited or was killed)
stops the reply, which is then saved as stopped, and ends the process.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from r1chat.session.childproc import Outbox, child_streams, read_frame


def main(argv: list[str]) -> int:
    out = child_streams()

    from r1chat.history.store import History
    from r1chat.launch.engines import open_engine
    from r1chat.session.items import JobEnded, batch
    from r1chat.session.worker import EngineThread, log_to_file

    log_to_file()
    outbox = Outbox(out, batch, lambda item: isinstance(item[1], JobEnded))
    writer = threading.Thread(target=outbox.run, name="r1chat-engine-writer", daemon=True)
    writer.start()
    history = History(Path(argv[0]))
    engine = EngineThread(outbox, history, open_engine)
    stdin = sys.stdin.buffer
    while (command := read_frame(stdin)) is not None:
        kind = command[0]
        if kind == "load":
            engine.load(command[2], job_id=command[1])
        elif kind == "reply":
            engine.reply(command[2], command[3], command[4], command[5], job_id=command[1])
        elif kind == "measure":
            engine.measure(command[2], command[3], command[4], job_id=command[1])
        elif kind == "cancel":
            engine.cancel(command[1])
        elif kind == "quit":
            break
    engine.stop(timeout=10.0)  # cancels the reply; it is saved before the thread ends
    outbox.close()
    writer.join(5.0)
    history.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The chat's model process: `python -m r1chat.session.child HISTORY_DB`.

It runs an `EngineThread` (load, replies, context measures, saving replies to History
as they stream) and talks to the chat over stdin/stdout in length-prefixed pickle frames
(`r1chat.session.process.read_frame/write_frame`):

- in: `("load", id, Settings)`, `("reply", id, Request, Guards, message_id, Overflow)`,
  `("measure", id, messages, Request, Overflow)`, `("cancel", id)`, `("quit",)`;
- out: lists of `(id, item)`, the items `EngineThread` puts on its inbox, joined by
  `batch()` and sent at most every `FRAME_S`.

Anything else written to file descriptors 1 and 2 (llama.cpp, Python warnings) goes to
the log file, never into the protocol. End of input (the chat exited or was killed)
stops the reply, which is then saved as stopped, and ends the process.
"""

from __future__ import annotations

import faulthandler
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

FRAME_S = 0.01


def main(argv: list[str]) -> int:
    # The protocol keeps the real stdout; fds 1 and 2 go to stderr's target (the log).
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the chat decides when to stop
    faulthandler.enable()  # a crash in llama.cpp leaves the Python stack in engine.log

    from r1chat.history.store import History
    from r1chat.launch.engines import open_engine
    from r1chat.session.items import Item, batch
    from r1chat.session.process import read_frame, write_frame
    from r1chat.session.worker import EngineThread, log_to_file

    log_to_file()
    inbox: queue.SimpleQueue[tuple[int, Item] | None] = queue.SimpleQueue()
    history = History(Path(argv[0]))
    engine = EngineThread(inbox, history, open_engine)  # type: ignore[arg-type]

    def forward() -> None:
        while True:
            first = inbox.get()
            if first is None:
                return
            time.sleep(FRAME_S)  # let a batch gather
            items = [first]
            try:
                while True:
                    item = inbox.get_nowait()
                    if item is None:
                        write_frame(out, batch(items))
                        return
                    items.append(item)
            except queue.Empty:
                pass
            try:
                write_frame(out, batch(items))
            except (OSError, ValueError):
                return  # the chat is gone

    writer = threading.Thread(target=forward, name="r1chat-engine-writer", daemon=True)
    writer.start()
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
    inbox.put(None)
    writer.join(5.0)
    history.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

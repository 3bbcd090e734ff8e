"""Tools from MCP servers, through the official `mcp` SDK, on a thread of their own.

`McpHub.start` connects every enabled server (stdio or streamable HTTP) and lists its
tools; `call` runs one and returns a Future the chat or `ask` waits on (cancelling it stops
the call). A server that cannot start, dies or answers with an error is one line, never an
exception out of here. Servers' stderr goes to `mcp.log` in the log folder (it must never
reach the chat's screen or `ask`'s pipe).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TextIO

from r1chat.config import paths
from r1chat.core.printable import one_line
from r1chat.mcp.config import ServerSpec

CONNECT_S = 30.0
"""How long a server may take to start and list its tools."""
CALL_S = 300.0
"""How long a tool may run before the call fails (esc stops it sooner)."""


@dataclass(frozen=True, slots=True)
class McpTool:
    server: str
    name: str  # as the model sees it: unique across servers
    remote: str  # the server's own name for it
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult:
    text: str
    error: bool = False


class McpHub:
    """The connected servers and their tools."""

    def __init__(self, specs: list[ServerSpec], *, connect_s: float = CONNECT_S) -> None:
        self.specs = [s for s in specs if not s.disabled]
        self.connect_s = connect_s
        self.tools: list[McpTool] = []
        self.problems: list[str] = []  # one line per server that could not start
        self.off: set[str] = set()  # servers turned off for this chat (the palette)
        self._sessions: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._log: TextIO | None = None

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect every server (at most `connect_s` each, all at once); those that fail
        are in `problems`."""
        if not self.specs or self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.name = "mcp"
        self._thread.start()
        ready.wait(self.connect_s + 5)

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._log is not None:
            self._log.close()

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        finally:
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        started = [asyncio.Event() for _ in self.specs]
        tasks = [
            asyncio.create_task(self._serve(spec, up))
            for spec, up in zip(self.specs, started, strict=True)
        ]
        await asyncio.gather(*(up.wait() for up in started))
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, spec: ServerSpec, up: asyncio.Event) -> None:
        """Hold one server's connection open until `close` (its context managers must be
        left in the task that entered them, so the time limit cancels this task)."""
        assert self._stop is not None
        task = asyncio.current_task()
        assert task is not None
        late = False

        def give_up() -> None:
            nonlocal late
            late = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.connect_s, give_up)
        try:
            async with AsyncExitStack() as stack:
                try:
                    session = await self._connect(spec, stack)
                finally:
                    timer.cancel()
                self._sessions[spec.name] = session
                up.set()
                await self._stop.wait()
        except BaseException as e:  # (an ExceptionGroup from the SDK's task groups too)
            if not up.is_set():
                why = f"no answer in {self.connect_s:g} s" if late else _why(e)
                self.problems.append(f"MCP server {spec.name!r} ({spec.where}): {why}")
            self._sessions.pop(spec.name, None)
            if isinstance(e, asyncio.CancelledError | KeyboardInterrupt) and not late:
                raise
        finally:
            up.set()

    async def _connect(self, spec: ServerSpec, stack: AsyncExitStack) -> Any:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

        if spec.url:
            client = create_mcp_http_client(headers=spec.headers or None)
            streams = await stack.enter_async_context(
                streamable_http_client(spec.url, http_client=client)
            )
            read, write = streams[0], streams[1]
        else:
            params = StdioServerParameters(
                command=spec.command,
                args=list(spec.args),
                env={**os.environ, **spec.env},
                cwd=spec.cwd,
            )
            read, write = await stack.enter_async_context(
                stdio_client(params, errlog=self._errlog())
            )
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        listed = await session.list_tools()
        taken = {t.name for t in self.tools}
        for t in listed.tools:
            name = t.name if t.name not in taken else f"{spec.name}_{t.name}"
            schema = t.input_schema if isinstance(t.input_schema, dict) else {}
            self.tools.append(McpTool(spec.name, name, t.name, t.description or "", schema))
        return session

    def _errlog(self) -> TextIO:
        if self._log is None:
            folder = paths.log_dir()
            folder.mkdir(parents=True, exist_ok=True)
            self._log = (folder / "mcp.log").open("a", encoding="utf-8")
        return self._log

    # -- tools ------------------------------------------------------------------------

    @property
    def offered(self) -> list[McpTool]:
        """The tools of the servers that are on."""
        return [t for t in self.tools if t.server not in self.off and t.server in self._sessions]

    def servers(self) -> list[tuple[ServerSpec, bool, int]]:
        """Each server, whether it is connected, and how many tools it gives."""
        return [
            (s, s.name in self._sessions, sum(t.server == s.name for t in self.tools))
            for s in self.specs
        ]

    def find(self, name: str) -> McpTool | None:
        return next((t for t in self.offered if t.name == name), None)

    def call(self, name: str, arguments: str) -> Future[ToolResult]:
        """Run tool `name` with `arguments` (JSON text); the Future's result is what the
        model reads next (an error is a result too). Cancel it to stop the call."""
        tool = next((t for t in self.tools if t.name == name and t.server not in self.off), None)
        loop = self._loop
        if tool is None or loop is None or loop.is_closed():
            done: Future[ToolResult] = Future()
            done.set_result(ToolResult(f"no tool named {name!r} is available", error=True))
            return done
        return asyncio.run_coroutine_threadsafe(self._call(tool, arguments), loop)

    async def _call(self, tool: McpTool, arguments: str) -> ToolResult:
        try:
            args = json.loads(arguments or "{}")
        except ValueError as e:
            return ToolResult(f"the arguments are not JSON: {e}", error=True)
        if not isinstance(args, dict):
            return ToolResult("the arguments must be a JSON object", error=True)
        session = self._sessions.get(tool.server)
        if session is None:
            return ToolResult(f"MCP server {tool.server!r} is not running", error=True)
        try:
            result = await asyncio.wait_for(session.call_tool(tool.remote, args), CALL_S)
        except TimeoutError:
            return ToolResult(f"{tool.name} gave no result in {CALL_S:g} s", error=True)
        except Exception as e:  # the server died, or broke the protocol
            self._sessions.pop(tool.server, None)
            return ToolResult(f"MCP server {tool.server!r} failed: {_why(e)}", error=True)
        return _result(result)


def _result(result: Any) -> ToolResult:
    parts = []
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')}]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    return ToolResult("\n".join(parts), error=bool(getattr(result, "is_error", False)))


def _why(e: BaseException) -> str:
    """One line for an error, the first of an exception group's."""
    while isinstance(inner := getattr(e, "exceptions", None), tuple) and inner:
        e = inner[0]
    if isinstance(e, TimeoutError):
        return "no answer in time"
    if isinstance(e, FileNotFoundError):
        return f"cannot run it ({e.strerror}: {e.filename})"
    return one_line(str(e)) or type(e).__name__

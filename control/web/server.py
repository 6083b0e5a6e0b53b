"""The Web API served from the switch's own event loop (uvicorn without its own loop or
signal handling: the switch owns both)."""
from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

log = logging.getLogger("vosmedia.web")


class _EmbeddedServer(uvicorn.Server):
    def capture_signals(self):
        return contextlib.nullcontext()       # the switch's CLI handles SIGINT/SIGTERM


class WebServer:
    def __init__(self, app, host: str, port: int):
        self.server = _EmbeddedServer(uvicorn.Config(app, host=host, port=port, loop="none",
                                                     lifespan="off", log_level="warning",
                                                     access_log=False, server_header=False))
        self.task: asyncio.Task | None = None

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one)."""
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()                # raises the bind error
                raise OSError("web server stopped during start-up")
            await asyncio.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        log.info("Web API on http://%s:%d/api (OpenAPI: /api/openapi.json)", host, port)
        return host, port

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5)

"""A Streamable HTTP MCP server built on the official SDK (mcp 2.x `MCPServer`), for the HTTP proxy's scenarios.

Usage: python http_server.py PORT [--json]
Tools: `echo` (answers at once), `slow` (takes as long as asked), and `headers` (the request headers it saw, so
that a test can show the agent's credential never reaches the upstream). Serves both protocol eras on /mcp.
"""
import asyncio
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("http-scenario")


@server.tool()
async def echo(text: str) -> str:
    """Answers with its text."""
    return text


@server.tool()
async def slow(seconds: float) -> str:
    """Waits, then answers. Says so on standard error when it is cancelled (notifications/cancelled)."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        print("slow: cancelled", file=sys.stderr, flush=True)
        raise
    return f"waited {seconds} s"


@server.tool()
async def headers(ctx: Context) -> str:
    """The names of the HTTP request headers this call arrived with, and the value of X-Upstream-Key."""
    request = ctx.request_context.request
    names = sorted(name.lower() for name in request.headers.keys()) if request is not None else []
    key = request.headers.get("x-upstream-key", "") if request is not None else ""
    return " ".join(names) + " | x-upstream-key=" + key


if __name__ == "__main__":
    server.run(
        transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]), json_response="--json" in sys.argv
    )

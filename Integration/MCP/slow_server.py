"""A stdio MCP server built on the official SDK (mcp 2.x `MCPServer`) with one tool that takes as long as it is
asked to: what the cancellation and kill scenarios need, and no reference server offers."""
import asyncio
from mcp.server.mcpserver import MCPServer

server = MCPServer("slow")

@server.tool()
async def slow(seconds: float) -> str:
    """Waits, then answers."""
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"

if __name__ == "__main__":
    server.run()

"""Calls one tool of an MCP server with the official Python client (stdio), and prints each result.

Usage: python call_tool.py [--times N] TOOL ARGUMENTS_JSON -- SERVER_COMMAND ARGS...
The server is started with this process's environment (so TOLLGATE_TOKEN and TOLLGATE_ADDRESS reach a
tollgate-mcp-proxy started as the server). Exits with status 1 if a call's result is a tool error.
"""
import argparse
import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main() -> int:
    split = sys.argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=1)
    parser.add_argument("tool")
    parser.add_argument("arguments")
    options = parser.parse_args(sys.argv[1:split])
    server = sys.argv[split + 1 :]
    parameters = StdioServerParameters(command=server[0], args=server[1:], env=dict(os.environ))
    failed = False
    async with stdio_client(parameters) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            for _ in range(options.times):
                result = await session.call_tool(options.tool, json.loads(options.arguments))
                text = " ".join(part.text for part in result.content if getattr(part, "type", "") == "text")
                is_error = getattr(result, "is_error", None)
                if is_error is None:
                    is_error = getattr(result, "isError", False)
                print(("tool error: " if is_error else "") + text, flush=True)
                failed = failed or bool(is_error)
    return 1 if failed else 0


sys.exit(asyncio.run(main()))

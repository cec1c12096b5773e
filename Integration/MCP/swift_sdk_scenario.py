"""Drives the example MCP server built on the official Swift SDK and metered with TollgateMCPSwift
(`Integration/MeteredSwiftServer`), with the official Python client over stdio.

Usage: python swift_sdk_scenario.py SERVER_COMMAND ARGS...
The server is started with this process's environment (TOLLGATE_TOKEN, TOLLGATE_ADDRESS, TOLLGATE_SPOOL).
Lists the tools, then calls lookup, lookup, summarize, fail and lookup. Prints one JSON object per line.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main() -> None:
    server = sys.argv[1:]
    parameters = StdioServerParameters(command=server[0], args=server[1:], env=dict(os.environ))
    async with stdio_client(parameters) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            print(json.dumps({"tools": sorted(tool.name for tool in tools.tools)}), flush=True)
            for tool, arguments in [("lookup", {"query": "a"}), ("lookup", {"query": "b"}),
                                    ("summarize", {"text": "twelve chars"}), ("fail", {}), ("lookup", {"query": "c"})]:
                result = await session.call_tool(tool, arguments)
                text = " ".join(part.text for part in result.content if getattr(part, "type", "") == "text")
                is_error = getattr(result, "is_error", None)
                if is_error is None:
                    is_error = getattr(result, "isError", False)
                structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
                print(json.dumps({"tool": tool, "isError": bool(is_error), "text": text,
                                  "structuredContent": structured}), flush=True)


asyncio.run(main())

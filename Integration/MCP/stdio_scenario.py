"""Drives an MCP server through tollgate-mcp-proxy with the official Python client (stdio, handshake era).

Usage: python stdio_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
The agent's token comes from TOLLGATE_TOKEN; SCENARIO_CALLS calls (1) are made to SCENARIO_TOOL
(get_current_time) with SCENARIO_ARGUMENTS (a JSON object), and SCENARIO_PROXY_ARGS (a JSON array) are more of the
proxy's options. Prints one JSON object per line: the tools listed, then each call's
result (isError, text, structuredContent), so that a test can check what the client saw.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main() -> None:
    # More of the proxy's options (--spool, --on-unavailable), as a JSON array.
    proxy_args = json.loads(os.environ.get("SCENARIO_PROXY_ARGS", "[]"))
    proxy, address = sys.argv[1], sys.argv[2]
    server = sys.argv[sys.argv.index("--") + 1 :]
    calls = int(os.environ.get("SCENARIO_CALLS", "1"))
    tool = os.environ.get("SCENARIO_TOOL", "get_current_time")
    arguments = json.loads(os.environ.get("SCENARIO_ARGUMENTS", '{"timezone": "UTC"}'))
    parameters = StdioServerParameters(
        command=proxy,
        args=["--tollgate", address, *proxy_args, "--", *server],
        env={"TOLLGATE_TOKEN": os.environ["TOLLGATE_TOKEN"], "PATH": os.environ.get("PATH", "")},
    )
    async with stdio_client(parameters) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            meta = {tool.name: getattr(tool, "meta", None) for tool in tools.tools}
            print(json.dumps({"tools": sorted(tool.name for tool in tools.tools), "meta": meta}), flush=True)
            for _ in range(calls):
                result = await session.call_tool(tool, arguments)
                text = " ".join(part.text for part in result.content if getattr(part, "type", "") == "text")
                # mcp 2.x names fields in snake case; 1.x in camel case.
                is_error = getattr(result, "is_error", None)
                if is_error is None:
                    is_error = getattr(result, "isError", False)
                structured = getattr(result, "structured_content", None)
                if structured is None:
                    structured = getattr(result, "structuredContent", None)
                print(json.dumps({"isError": bool(is_error), "text": text, "structuredContent": structured}), flush=True)


asyncio.run(main())

"""Drives MCP servers through tollgate-mcp-proxy with the official Python client speaking the 2026-07-28
revision (no initialize: `server/discover`, the protocol version in each request's `_meta`, `resultType`).

Usage: python modern_scenario.py PROXY TOLLGATE_ADDRESS TIME_SERVER CONFIRM_SERVER
The agent's token comes from TOLLGATE_TOKEN; SCENARIO_PROXY_ARGS (a JSON array) are more of the proxy's options.
Through one proxy in front of TIME_SERVER it calls get_current_time twice; through another in front of
CONFIRM_SERVER it calls deploy, whose first round asks for input (`input_required`) that the client's
elicitation callback answers on the retry. Prints one JSON object per line: what the client saw.
"""
import asyncio
import json
import os
import sys

import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

MODERN = "2026-07-28"


def text_of(result) -> str:
    return " ".join(part.text for part in result.content if getattr(part, "type", "") == "text")


async def main() -> None:
    proxy, address, time_server, confirm_server = sys.argv[1:5]
    proxy_args = json.loads(os.environ.get("SCENARIO_PROXY_ARGS", "[]"))
    env = {"TOLLGATE_TOKEN": os.environ["TOLLGATE_TOKEN"], "PATH": os.environ.get("PATH", "")}

    def through_proxy(*server: str) -> StdioServerParameters:
        return StdioServerParameters(command=proxy, args=["--tollgate", address, *proxy_args, "--", *server], env=env)

    async with Client(through_proxy(time_server), mode=MODERN) as client:
        for _ in range(2):
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            print(json.dumps({"tool": "get_current_time", "isError": result.is_error, "text": text_of(result),
                              "protocolVersion": client.session.protocol_version}), flush=True)

    asked = []

    async def confirm(context, params) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    python = sys.executable
    async with Client(through_proxy(python, confirm_server), mode=MODERN, elicitation_callback=confirm) as client:
        result = await client.call_tool("deploy", {"target": "prod"})
        print(json.dumps({"tool": "deploy", "isError": result.is_error, "text": text_of(result), "asked": asked}),
              flush=True)


asyncio.run(main())

"""Drives an MCP server through tollgate-mcp-proxy over Streamable HTTP with the official Python client.

Usage: python http_scenario.py URL MODE CALLS
MODE is `legacy` (the handshake era: initialize, Mcp-Session-Id) or `2026-07-28`. The agent's token, from
TOLLGATE_TOKEN, goes in `Authorization: Bearer …`. Lists the tools, calls `echo` CALLS times and `headers` once,
then sends two requests without a good credential. Prints one JSON object per line: what the client saw.
"""
import asyncio
import json
import os
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


def text_of(result) -> str:
    return " ".join(part.text for part in result.content if getattr(part, "type", "") == "text")


async def main() -> None:
    url, mode, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    token = os.environ["TOLLGATE_TOKEN"]
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            meta = {tool.name: getattr(tool, "meta", None) for tool in tools.tools}
            print(json.dumps({"tools": sorted(tool.name for tool in tools.tools), "meta": meta}), flush=True)
            for index in range(calls):
                result = await client.call_tool("echo", {"text": f"hello {index}"})
                structured = getattr(result, "structured_content", None)
                print(json.dumps({"tool": "echo", "isError": result.is_error, "text": text_of(result),
                                  "structuredContent": structured}), flush=True)
            result = await client.call_tool("headers", {})
            print(json.dumps({"tool": "headers", "isError": result.is_error, "text": text_of(result)}), flush=True)

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "s", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=30) as raw:
        for name, headers in [("none", {}), ("bad", {"Authorization": "Bearer AGT-not-a-real-token"})]:
            response = await raw.post(url, json=initialize, headers={**accept, **headers})
            print(json.dumps({"credential": name, "status": response.status_code,
                              "wwwAuthenticate": response.headers.get("www-authenticate")}), flush=True)


asyncio.run(main())

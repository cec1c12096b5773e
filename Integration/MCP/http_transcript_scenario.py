"""Records what a client receives from a Streamable HTTP MCP server, directly or through tollgate-mcp-proxy, so
that a test can compare the two transcripts. Speaks HTTP directly (the official client does not show the bytes).

Usage: python http_transcript_scenario.py URL MODE
MODE is `legacy` (initialize, notifications/initialized, tools/list, ping, tools/call echo, DELETE) or
`2026-07-28` (server/discover, tools/list, tools/call echo: the protocol version in each request's `_meta`, and
the Mcp-Method / Mcp-Name headers). TOLLGATE_TOKEN goes in `Authorization: Bearer …` (an upstream ignores it).
Prints one JSON object per exchange: the status, the content type, and the body — as received for JSON, the data
of each event for an SSE stream (a proxy may add SSE comments while an upstream is silent; they carry nothing).
Session ids, which differ from one server session to the next, are left out.
"""
import asyncio
import json
import os
import sys

import httpx2

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "transcript", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}


def events(body: str) -> list[str]:
    data, current = [], []
    for line in body.replace("\r\n", "\n").split("\n"):
        if line.startswith("data:"):
            current.append(line[5:].removeprefix(" "))
        elif line == "" and current:
            data.append("\n".join(current))
            current = []
    return data


async def main() -> None:
    url, mode = sys.argv[1], sys.argv[2]
    headers = {"Authorization": f"Bearer {os.environ['TOLLGATE_TOKEN']}",
               "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async def exchange(message: dict, extra: dict | None = None, method: str = "POST") -> httpx2.Response:
            if method == "DELETE":
                response = await http.delete(url, headers=extra or {})
            else:
                response = await http.post(url, json=message, headers=extra or {})
            content_type = response.headers.get("content-type", "").split(";")[0]
            body = events(response.text) if content_type == "text/event-stream" else response.text
            print(json.dumps({"status": response.status_code, "contentType": content_type, "body": body}),
                  flush=True)
            return response

        if mode == "legacy":
            first = await exchange({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "transcript", "version": "1"}}})
            session = {"Mcp-Session-Id": first.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
            await exchange({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
            await exchange({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}, session)
            await exchange({"jsonrpc": "2.0", "id": 3, "method": "ping"}, session)
            await exchange({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                            "params": {"name": "echo", "arguments": {"text": "same"}}}, session)
            await exchange({}, session, method="DELETE")
        else:
            def modern(method: str, name: str | None = None) -> dict:
                headers = {"Mcp-Protocol-Version": MODERN, "Mcp-Method": method}
                if name:
                    headers["Mcp-Name"] = name
                return headers
            await exchange({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}},
                           modern("server/discover"))
            await exchange({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}},
                           modern("tools/list"))
            await exchange({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                "name": "echo", "arguments": {"text": "same"}, "_meta": META}}, modern("tools/call", "echo"))


asyncio.run(main())

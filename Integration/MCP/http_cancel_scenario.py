"""Starts a slow tool call through tollgate-mcp-proxy over Streamable HTTP and closes its SSE stream before the
result: for the proxy, a cancellation. Speaks the handshake era's HTTP directly (the official client gives no
handle on the stream of one call).

Usage: python http_cancel_scenario.py URL
The agent's token comes from TOLLGATE_TOKEN; the stream is closed after SCENARIO_CLOSE_AFTER_SECONDS (1). Prints one JSON object per line: what it saw.
"""
import asyncio
import json
import os
import sys

import httpx2


async def main() -> None:
    url = sys.argv[1]
    headers = {"Authorization": f"Bearer {os.environ['TOLLGATE_TOKEN']}",
               "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "cancel", "version": "1"}}}
        response = await http.post(url, json=initialize)
        session = response.headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}
        await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow",
                                                                           "arguments": {"seconds": 20}}}
        async with http.stream("POST", url, json=call, headers=headers) as stream:
            print(json.dumps({"status": stream.status_code, "contentType": stream.headers.get("content-type")}),
                  flush=True)
            await asyncio.sleep(float(os.environ.get("SCENARIO_CLOSE_AFTER_SECONDS", "1")))
        # The stream is closed: the call's hold goes back, and the upstream is told the call is cancelled.
        print(json.dumps({"closed": True}), flush=True)
        await asyncio.sleep(float(os.environ.get("SCENARIO_LINGER_SECONDS", "3")))
        await http.delete(url, headers=headers)


asyncio.run(main())

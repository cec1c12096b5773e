"""Cancels a tool call in flight through tollgate-mcp-proxy, speaking MCP's JSON-RPC lines directly (the official
client gives no handle on when its cancellation is sent).

Usage: python cancel_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
PROXY `none` starts the server itself (one that meters its own calls, such as MeteredSwiftServer), with
TOLLGATE_ADDRESS in its environment. Starts a slow call (id 2), cancels it half a second later, then makes a quick call (id 3), keeps the connection
open for SCENARIO_LINGER_SECONDS (3), and closes it. Prints each message received from the proxy, one JSON object per line.
"""
import os
import sys
import time

from mcp_lines import Lines, proxy_command, server_of


def main() -> None:
    proxy, address, server = sys.argv[1], sys.argv[2], server_of(sys.argv)
    if proxy == "none":
        env = {"TOLLGATE_ADDRESS": address}
        if "TOLLGATE_SPOOL" in os.environ:
            env["TOLLGATE_SPOOL"] = os.environ["TOLLGATE_SPOOL"]
        lines = Lines(server, env)
    else:
        lines = Lines(proxy_command(proxy, address, server))
    lines.initialize("s")
    lines.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "slow", "arguments": {"seconds": 30}}})
    time.sleep(0.5)
    lines.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2, "reason": "user"}})
    lines.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "slow", "arguments": {"seconds": 0.1}}})
    lines.until(3)
    # The connection stays open a while, so that the test sees the holds as they are before the proxy ends
    # (its end releases whatever is still held).
    time.sleep(float(os.environ.get("SCENARIO_LINGER_SECONDS", "3")))
    lines.close()


main()

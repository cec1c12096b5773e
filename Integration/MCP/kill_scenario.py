"""Kills tollgate-mcp-proxy (SIGKILL) while a call is in flight, speaking MCP's JSON-RPC lines directly.

Usage: python kill_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
A quick call (id 2) completes; a slow one (id 3) is forwarded; a second later the proxy is killed. Its hold is
made to last 4 s (`--hold-ttl-ms 4000`), so that the test sees it expire. Prints each message received.
"""
import json
import signal
import sys
import time

from mcp_lines import Lines, proxy_command, server_of


def main() -> None:
    proxy = Lines(proxy_command(sys.argv[1], sys.argv[2], server_of(sys.argv), "--hold-ttl-ms", "4000"))
    proxy.initialize("k")
    proxy.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "slow", "arguments": {"seconds": 0.1}}})
    proxy.until(2)
    proxy.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "slow", "arguments": {"seconds": 30}}})
    time.sleep(1.0)
    proxy.child.send_signal(signal.SIGKILL)
    proxy.child.wait(timeout=10)
    print(json.dumps({"killed": True}), flush=True)


main()

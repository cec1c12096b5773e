"""Stops tollgate-mcp-proxy with a signal while a call is in flight, speaking MCP's JSON-RPC lines directly.

Usage: python kill_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
A quick call (id 2) completes; a slow one (id 3) is forwarded; a second later the proxy is sent SCENARIO_SIGNAL
(KILL, the default, or TERM), to it alone, with its input still open. Its holds are made to last 4 s
(`--hold-ttl-ms 4000`), so that the test sees one expire. Prints each message received, then how the proxy ended:
{"killed": true, "status": the exit status, negative for the signal that ended it}.
"""
import json
import os
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
    proxy.child.send_signal(getattr(signal, "SIG" + os.environ.get("SCENARIO_SIGNAL", "KILL")))
    status = proxy.child.wait(timeout=30)
    print(json.dumps({"killed": True, "status": status}), flush=True)


main()

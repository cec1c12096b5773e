"""Cancels a tool call in flight through tollgate-mcp-proxy, speaking MCP's JSON-RPC lines directly (the official
client gives no handle on when its cancellation is sent).

Usage: python cancel_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
PROXY `none` starts the server itself (one that meters its own calls, such as MeteredSwiftServer), with
TOLLGATE_ADDRESS in its environment. Starts a slow call (id 2), cancels it half a second later, then makes a quick call (id 3), keeps the connection
open for SCENARIO_LINGER_SECONDS (3), and closes it. Prints each message received from the proxy, one JSON object per line.
"""
import json
import os
import subprocess
import sys
import time


def main() -> None:
    # More of the proxy's options (--spool, --on-unavailable), as a JSON array.
    proxy_args = json.loads(os.environ.get("SCENARIO_PROXY_ARGS", "[]"))
    proxy, address = sys.argv[1], sys.argv[2]
    server = sys.argv[sys.argv.index("--") + 1 :]
    env = {"TOLLGATE_TOKEN": os.environ["TOLLGATE_TOKEN"], "PATH": os.environ.get("PATH", "")}
    if proxy == "none":
        command = server
        env["TOLLGATE_ADDRESS"] = address
        if "TOLLGATE_SPOOL" in os.environ:
            env["TOLLGATE_SPOOL"] = os.environ["TOLLGATE_SPOOL"]
    else:
        command = [proxy, "--tollgate", address, *proxy_args, "--", *server]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def send(message: dict) -> None:
        child.stdin.write((json.dumps(message) + "\n").encode())
        child.stdin.flush()

    def receive() -> dict:
        line = child.stdout.readline()
        if not line:
            raise SystemExit("the proxy closed its output")
        message = json.loads(line)
        print(json.dumps(message), flush=True)
        return message

    send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "s", "version": "1"}},
        }
    )
    receive()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 30}}})
    time.sleep(0.5)
    send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2, "reason": "user"}})
    send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 0.1}}})
    while receive().get("id") != 3:
        pass
    # The connection stays open a while, so that the test sees the holds as they are before the proxy ends
    # (its end releases whatever is still held).
    time.sleep(float(os.environ.get("SCENARIO_LINGER_SECONDS", "3")))
    child.stdin.close()
    child.wait(timeout=60)


main()

"""Kills tollgate-mcp-proxy (SIGKILL) while a call is in flight, speaking MCP's JSON-RPC lines directly.

Usage: python kill_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
A quick call (id 2) completes; a slow one (id 3) is forwarded; a second later the proxy is killed. Its hold is
made to last 4 s (`--hold-ttl-ms 4000`), so that the test sees it expire. Prints each message received.
"""
import json
import os
import signal
import subprocess
import sys
import time


def main() -> None:
    # More of the proxy's options (--spool, --on-unavailable), as a JSON array.
    proxy_args = json.loads(os.environ.get("SCENARIO_PROXY_ARGS", "[]"))
    proxy, address = sys.argv[1], sys.argv[2]
    server = sys.argv[sys.argv.index("--") + 1 :]
    child = subprocess.Popen(
        [proxy, "--tollgate", address, "--hold-ttl-ms", "4000", *proxy_args, "--", *server],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"TOLLGATE_TOKEN": os.environ["TOLLGATE_TOKEN"], "PATH": os.environ.get("PATH", "")},
    )

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
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "k", "version": "1"}},
        }
    )
    receive()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 0.1}}})
    while receive().get("id") != 2:
        pass
    send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 30}}})
    time.sleep(1.0)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    print(json.dumps({"killed": True}), flush=True)


main()

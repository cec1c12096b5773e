"""Records what a client receives from an MCP server, byte for byte, directly or through tollgate-mcp-proxy.

Usage: python transcript_scenario.py direct -- SERVER_COMMAND ARGS...
       python transcript_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
Sends initialize, notifications/initialized, tools/list and a ping, then prints each line received, exactly as
received, so that a test can compare the two transcripts.
"""
import json
import os
import subprocess
import sys


def main() -> None:
    # More of the proxy's options (--spool, --on-unavailable), as a JSON array.
    proxy_args = json.loads(os.environ.get("SCENARIO_PROXY_ARGS", "[]"))
    server = sys.argv[sys.argv.index("--") + 1 :]
    if sys.argv[1] == "direct":
        command = server
    else:
        command = [sys.argv[1], "--tollgate", sys.argv[2], *proxy_args, "--", *server]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"TOLLGATE_TOKEN": os.environ.get("TOLLGATE_TOKEN", ""), "PATH": os.environ.get("PATH", "")},
    )

    def send(message: dict) -> None:
        child.stdin.write((json.dumps(message) + "\n").encode())
        child.stdin.flush()

    def receive() -> bytes:
        line = child.stdout.readline()
        if not line:
            raise SystemExit("the server closed its output")
        sys.stdout.write(line.decode())
        sys.stdout.flush()
        return line

    send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        }
    )
    receive()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
    receive()
    send({"jsonrpc": "2.0", "id": 3, "method": "ping"})
    receive()
    child.stdin.close()
    child.wait(timeout=30)


main()

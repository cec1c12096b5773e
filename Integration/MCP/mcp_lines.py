"""A client that speaks MCP's JSON-RPC lines directly to a stdio server or to tollgate-mcp-proxy — for the
scenarios that need a handle the official client does not give (when a cancellation is sent, the raw bytes
received, killing the proxy, the tasks extension). Imported by the scenario scripts beside it.
"""
import json
import os
import subprocess
import sys


def proxy_command(proxy: str, address: str, server: list[str], *options: str) -> list[str]:
    """`proxy` started in front of `server`, with `options` and SCENARIO_PROXY_ARGS (a JSON array) added."""
    extra = json.loads(os.environ.get("SCENARIO_PROXY_ARGS", "[]"))
    return [proxy, "--tollgate", address, *options, *extra, "--", *server]


def server_of(argv: list[str]) -> list[str]:
    """The server command: what follows `--`."""
    return argv[argv.index("--") + 1 :]


class Lines:
    """One stdio connection: lines out, lines in; every line received is printed as it came, or as JSON."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, raw: bool = False) -> None:
        base = {"TOLLGATE_TOKEN": os.environ.get("TOLLGATE_TOKEN", ""), "PATH": os.environ.get("PATH", "")}
        self.child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**base, **(env or {})})
        self.raw = raw

    def send(self, message: dict) -> None:
        self.child.stdin.write((json.dumps(message) + "\n").encode())
        self.child.stdin.flush()

    def receive(self) -> dict:
        line = self.child.stdout.readline()
        if not line:
            raise SystemExit("the server closed its output")
        if self.raw:
            sys.stdout.write(line.decode())
            sys.stdout.flush()
        message = json.loads(line)
        if not self.raw:
            print(json.dumps(message), flush=True)
        return message

    def until(self, request_id) -> dict:
        """Messages received until the answer to `request_id`, which is returned."""
        while True:
            message = self.receive()
            if message.get("id") == request_id:
                return message

    def initialize(self, name: str) -> None:
        """The handshake era's opening: `initialize`, its answer, `notifications/initialized`."""
        self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}})
        self.receive()
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self, timeout: float = 60) -> None:
        self.child.stdin.close()
        self.child.wait(timeout=timeout)

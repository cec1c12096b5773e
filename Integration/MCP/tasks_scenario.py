"""Three tool calls answered as tasks (the tasks extension, 2026-07-28) through tollgate-mcp-proxy over stdio,
speaking MCP's JSON-RPC lines directly (the official client has no tasks support yet).

Usage: python tasks_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
Task 1 is polled until it completes; task 2 is cancelled (tasks/cancel) and polled until it shows so; task 3 is
never asked about again and has a TTL of 1.5 s. The connection then stays open SCENARIO_LINGER_SECONDS (4), or
until the file SCENARIO_UNTIL_FILE names exists.
SCENARIO_PROXY_ARGS (a JSON array) are more of the proxy's options.
Prints each message received from the proxy, one JSON object per line.
"""
import json
import os
import sys
import time

from mcp_lines import Lines, proxy_command, server_of

VERSION = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}


def main() -> None:
    lines = Lines(proxy_command(sys.argv[1], sys.argv[2], server_of(sys.argv)))
    next_id = 0

    def request(method: str, params: dict) -> dict:
        nonlocal next_id
        next_id += 1
        lines.send({"jsonrpc": "2.0", "id": next_id, "method": method, "params": {**params, "_meta": META}})
        answer = lines.until(next_id)
        return answer.get("result") or answer

    def until(task_id: str, statuses: set[str]) -> dict:
        while True:
            task = request("tasks/get", {"taskId": task_id})
            if task.get("status") in statuses:
                return task
            time.sleep(task.get("pollIntervalMs", 100) / 1000)

    request("server/discover", {})
    first = request("tools/call", {"name": "report", "arguments": {"seconds": 0.5}})
    second = request("tools/call", {"name": "report", "arguments": {"seconds": 30}})
    request("tools/call", {"name": "report", "arguments": {"seconds": 30, "ttlMs": 1500}})
    until(first["taskId"], {"completed", "failed", "cancelled"})
    request("tasks/cancel", {"taskId": second["taskId"]})
    until(second["taskId"], {"completed", "failed", "cancelled"})
    # The connection stays open until the test has seen what it needs (the file SCENARIO_UNTIL_FILE names
    # appears), or SCENARIO_LINGER_SECONDS pass: the proxy's end releases whatever is still held.
    until_file = os.environ.get("SCENARIO_UNTIL_FILE")
    deadline = time.monotonic() + float(os.environ.get("SCENARIO_LINGER_SECONDS", "4"))
    while time.monotonic() < deadline and not (until_file and os.path.exists(until_file)):
        time.sleep(0.05)
    lines.close()


main()

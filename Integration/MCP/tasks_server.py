"""A stdio MCP server speaking the 2026-07-28 revision with the tasks extension (`io.modelcontextprotocol/tasks`),
written to the extension's specification: the official SDK (mcp 2.3.0) has no server side for tasks yet, so this
one speaks the JSON-RPC lines itself. Standard library only.

Tool `report {seconds, ttlMs}`: answered with a task (`resultType: "task"`) when the request declares the
extension in its per-request client capabilities, else run at once. The task completes `seconds` after it was
created, with the usage it reports in `_meta["dev.tollgate/usage"]`; `tasks/cancel` cancels it.
"""
import datetime
import json
import sys
import time
import uuid

TASKS = "io.modelcontextprotocol/tasks"
tasks: dict[str, dict] = {}


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def result_of(task: dict) -> dict:
    return {"content": [{"type": "text", "text": f"report ready after {task['seconds']} s"}], "isError": False,
            "_meta": {"dev.tollgate/usage": {"outputTokens": 120, "providerCost": "0.0004", "model": "report-model-1"}}}


def detailed(task: dict) -> dict:
    """The task as `tasks/get` shows it now."""
    if task["status"] == "working" and time.monotonic() >= task["due"]:
        task["status"] = "completed"
        task["lastUpdatedAt"] = now_iso()
    shown = {key: task[key] for key in ("taskId", "status", "createdAt", "lastUpdatedAt", "ttlMs")}
    shown["pollIntervalMs"] = 100
    if task["status"] == "completed":
        shown["result"] = result_of(task)
    return shown


def handle(message: dict) -> dict | None:
    method, params = message.get("method"), message.get("params") or {}
    meta = params.get("_meta") or {}
    if method == "server/discover":
        return {"resultType": "complete", "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}, "extensions": {TASKS: {}}},
                "serverInfo": {"name": "tasks-server", "version": "1"}}
    if method == "tools/list":
        return {"resultType": "complete", "tools": [{"name": "report", "description": "A report that takes a while.",
                "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"},
                                                                 "ttlMs": {"type": "integer"}}}}]}
    if method == "tools/call":
        arguments = params.get("arguments") or {}
        extensions = (meta.get("io.modelcontextprotocol/clientCapabilities") or {}).get("extensions") or {}
        if TASKS not in extensions:
            return {"resultType": "complete", **result_of({"seconds": 0})}
        created = now_iso()
        task = {"taskId": str(uuid.uuid4()), "status": "working", "createdAt": created, "lastUpdatedAt": created,
                "ttlMs": arguments.get("ttlMs", 60000), "seconds": arguments.get("seconds", 1),
                "due": time.monotonic() + float(arguments.get("seconds", 1))}
        tasks[task["taskId"]] = task
        return {"resultType": "task", **detailed(task)}
    if method == "tasks/get":
        task = tasks.get(params.get("taskId"))
        if task is None:
            raise KeyError(params.get("taskId"))
        return {"resultType": "complete", **detailed(task)}
    if method == "tasks/cancel":
        task = tasks.get(params.get("taskId"))
        if task is None:
            raise KeyError(params.get("taskId"))
        if task["status"] == "working":
            task["status"], task["lastUpdatedAt"] = "cancelled", now_iso()
        return {"resultType": "complete"}
    raise LookupError(method)


for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message or "method" not in message:
        continue  # notifications, and answers to requests this server never sends
    try:
        send({"jsonrpc": "2.0", "id": message["id"], "result": handle(message)})
    except KeyError as unknown:
        send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32602, "message": f"no task {unknown}"}})
    except LookupError:
        send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "method not found"}})

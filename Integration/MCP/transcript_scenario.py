"""Records what a client receives from an MCP server, byte for byte, directly or through tollgate-mcp-proxy.

Usage: python transcript_scenario.py direct -- SERVER_COMMAND ARGS...
       python transcript_scenario.py PROXY TOLLGATE_ADDRESS -- SERVER_COMMAND ARGS...
Sends initialize, notifications/initialized, tools/list and a ping, then prints each line received, exactly as
received, so that a test can compare the two transcripts.
"""
import sys

from mcp_lines import Lines, proxy_command, server_of


def main() -> None:
    server = server_of(sys.argv)
    command = server if sys.argv[1] == "direct" else proxy_command(sys.argv[1], sys.argv[2], server)
    lines = Lines(command, raw=True)
    lines.initialize("t")
    lines.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
    lines.receive()
    lines.send({"jsonrpc": "2.0", "id": 3, "method": "ping"})
    lines.receive()
    lines.close(timeout=30)


main()

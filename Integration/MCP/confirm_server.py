"""A stdio MCP server built on the official SDK (mcp 2.x `MCPServer`) whose one tool asks the user to confirm
before it runs: on 2026-07-28 the question travels as a `resultType: "input_required"` result and the client's
retry (multi round-trip requests); on earlier revisions as an `elicitation/create` request to the client."""
from typing import Annotated

from pydantic import BaseModel

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve

server = MCPServer("confirm")


class Confirmation(BaseModel):
    confirm: bool


async def ask(target: str) -> Elicit[Confirmation]:
    return Elicit(f"Deploy to {target}?", Confirmation)


@server.tool()
async def deploy(target: str, confirmation: Annotated[Confirmation, Resolve(ask)]) -> str:
    """Deploys, once the user confirms."""
    return f"deployed to {target}" if confirmation.confirm else "not deployed"


if __name__ == "__main__":
    server.run()

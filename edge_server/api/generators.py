"""Commands to the generator's own controller (edge_server/genset/control.py).

    POST /api/v1/generators/{name}/commands   {"command": "auto"}   role technician or higher
        200 {"generator", "command", "who"} when carried out; 409 {"error", "text_en",
        "text_nl"} when an interlock refuses it (mains absent or unknown for start,
        test_on_load, manual or stop); 404 for an unknown generator. Every command and
        every refusal is in the event log with who gave it.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from edge_server.api.deps import ServiceDep
from edge_server.auth import Technician
from edge_server.genset.control import GensetControl, GensetRefused

router = APIRouter(prefix="/api/v1", tags=["generators"])


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: Literal["start", "stop", "auto", "manual", "test_on_load", "reset_alarms"]


@router.post("/generators/{name}/commands", response_model=None)
async def generator_command(
    body: CommandRequest, user: Technician, service: ServiceDep,
    name: str = Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$"),
) -> dict[str, Any] | JSONResponse:
    if service.genset is None or name not in service.genset.drivers:
        return JSONResponse({"error": "UNKNOWN_GENERATOR", "text_en": f"No generator {name!r}",
                             "text_nl": f"Geen aggregaat {name!r}"},
                            status_code=status.HTTP_404_NOT_FOUND)
    control = GensetControl(service.genset, service.state, service.storage)
    try:
        return await control.command(name, body.command, user.name)
    except GensetRefused as exc:
        return JSONResponse(exc.to_json(), status_code=status.HTTP_409_CONFLICT)

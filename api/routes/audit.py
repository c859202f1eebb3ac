"""The log that proves itself (docs/audit.md): signed checkpoints of the audit tree, as C2SP
signed notes, and its RFC 9162 inclusion and consistency proofs, hashes in lowercase hex."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.access import PolicyRoute
from api.deps import RuntimeDep
from api.fields import MAX_POSITION
from api.problems import PROBLEM_RESPONSES
from lifecycle.transparency import AuditLog

router = APIRouter(route_class=PolicyRoute, prefix="/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)

NOTE = {200: {"content": {"text/plain": {"example": "lifecycle.example/audit\n42\nBASE64ROOT=\n\n— lifecycle.example/audit BASE64SIG=\n"}},
              "description": "A C2SP signed note (tlog-checkpoint)"}}
TreeSize = Annotated[int, Query(ge=1, le=MAX_POSITION)]


async def get_audit(runtime: RuntimeDep) -> AuditLog:
    return runtime.audit


AuditDep = Annotated[AuditLog, Depends(get_audit)]


class InclusionProofPublic(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 ‖ leaf), lowercase hex")
    hashes: list[str] = Field(description="The audit path, deepest first (RFC 9162 §2.1.3)")


class ConsistencyProofPublic(BaseModel):
    first: int
    second: int
    hashes: list[str] = Field(description="RFC 9162 §2.1.4 consistency proof")


def _note(text: str) -> PlainTextResponse:
    return PlainTextResponse(text, media_type="text/plain; charset=utf-8")


@router.get("/checkpoints/latest", response_class=PlainTextResponse, responses=NOTE)
def latest_checkpoint(audit: AuditDep) -> PlainTextResponse:
    """The latest signed checkpoint of the audit tree."""
    return _note(audit.latest().note)


@router.get("/checkpoints/{tree_size}", response_class=PlainTextResponse, responses=NOTE)
def checkpoint_at(audit: AuditDep, tree_size: Annotated[int, Path(ge=0, le=MAX_POSITION)]) -> PlainTextResponse:
    """The checkpoint signed at this tree size (every checkpoint is kept)."""
    return _note(audit.at(tree_size).note)


@router.get("/proofs/inclusion", response_model=InclusionProofPublic)
def inclusion_proof(
    audit: AuditDep, index: Annotated[int, Query(ge=0, le=MAX_POSITION)], tree_size: TreeSize
) -> dict:
    """The audit path of leaf `index` (the log's `index`-th event, from 0) in the tree of `tree_size` leaves."""
    return audit.inclusion(index, tree_size).as_dict()


@router.get("/proofs/consistency", response_model=ConsistencyProofPublic)
def consistency_proof(audit: AuditDep, first: TreeSize, second: TreeSize) -> dict:
    """That the tree of `second` leaves extends the tree of `first` leaves."""
    return audit.consistency(first, second).as_dict()

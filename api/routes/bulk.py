"""Bulk registration from an Excel sheet (一括登録シート, K-1): the template, uploads, jobs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.access import PolicyRoute
from api.deps import BulkDep
from api.downloads import attachment
from api.problems import PROBLEM_RESPONSES
from api.schemas import BulkJobPublic
from api.uploads import UPLOAD_BODY_OPENAPI, read_uploaded_sheet, too_large
from lifecycle.bulk.sheets import build_template

router = APIRouter(route_class=PolicyRoute, prefix="/v1", tags=["bulk registration"], responses=PROBLEM_RESPONSES)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The seed's name of the sheet (K-1).
TEMPLATE_FILE_NAME = "一括登録シート.xlsx"
_XLSX_RESPONSE = {200: {"content": {XLSX: {}}, "description": "An Excel workbook (.xlsx)."}}


@router.get("/bulk/template.xlsx", response_class=Response, responses=_XLSX_RESPONSE)
def bulk_template() -> Response:
    """The bulk-registration template: one sheet for new tickets, bundles and renewals, and
    the instructions in Japanese."""
    return Response(build_template(), media_type=XLSX, headers=attachment(TEMPLATE_FILE_NAME, "ikkatsu_touroku.xlsx"))


@router.post(
    "/companies/{company_id}/bulk",
    status_code=201,
    response_model=BulkJobPublic,
    responses={200: {"model": BulkJobPublic, "description": "A dry run: every row validated, nothing stored."},
               202: {"model": BulkJobPublic, "description": "A large sheet: a job, with its Location."}},
    openapi_extra=UPLOAD_BODY_OPENAPI,
)
async def upload_sheet(
    company_id: UUID,
    request: Request,
    bulk: BulkDep,
    dry_run: Annotated[bool, Query(description="Validate every row; register nothing.")] = False,
) -> JSONResponse:
    """Register every row of a filled sheet for the company (multipart/form-data, the sheet in
    the field `file` and nothing else). Each row gets its status, code and message (the single
    commands' codes and messages); valid rows are registered even when others are refused, and
    a row registered by an earlier upload is answered `already_registered`. A small sheet is
    answered at once (201, or 200 for a dry run); a large one becomes a job (202 with its
    Location: `GET /v1/bulk/{job_id}`). A file that cannot be read is refused at once with one
    problem, and nothing is imported; a file over the size limit is refused (413) as soon as
    its first byte over the limit arrives."""
    limit = bulk.max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:  # the multipart overhead aside
        raise too_large(limit)
    # Read here rather than as a File parameter, whose parsing would spool any size first.
    file_name, content = await read_uploaded_sheet(request, limit)
    # The sheet is read and registered on a worker thread, as a plain route's body would be.
    answer, finished = await run_in_threadpool(bulk.submit, company_id, content, file_name, dry_run=dry_run)
    if not finished:
        location = f"/v1/bulk/{answer['job_id']}"
        return JSONResponse(answer, status_code=202, headers={"Location": location})
    status = 200 if answer["job_id"] is None else 201
    headers = {"Location": f"/v1/bulk/{answer['job_id']}"} if answer["job_id"] else {}
    return JSONResponse(answer, status_code=status, headers=headers)


@router.get("/bulk/{job_id}", response_model=BulkJobPublic)
def bulk_job(
    job_id: UUID,
    bulk: BulkDep,
    rows: Annotated[bool, Query(description="Include each row's result (false: progress only).")] = True,
) -> dict:
    """A bulk job's progress (rows done, refused, percent, an estimate of the seconds left) and
    each row's result so far."""
    return bulk.job(job_id, with_rows=rows)


@router.get("/bulk/{job_id}/result.xlsx", response_class=Response, responses=_XLSX_RESPONSE)
def bulk_result_sheet(job_id: UUID, bulk: BulkDep) -> Response:
    """The uploaded sheet with status, code and message columns added; rows to fix in red."""
    name, content = bulk.result_sheet(job_id)
    return Response(content, media_type=XLSX, headers=attachment(name))

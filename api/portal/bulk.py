"""一括登録 (K-1, seed p.17, p.23, p.29): the template, an upload checked without registering
(確認) or registered (登録する), each row's result with the single commands' messages, a job's
progress while it runs, and the result sheet.

The same service as the API's bulk routes (BulkImports), behind the same owner checks: a
sheet is read and decided by the application, never here."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.access import owns_bulk_job, owns_company
from api.portal.forms import Form
from api.portal.web import PREFIX, CustomerDep, PortalRoute, owned, redirect, render
from api.routes.bulk import XLSX, attachment
from lifecycle.bulk.results import STATUS_JA, RowStatus
from lifecycle.bulk.sheets import build_template
from lifecycle.domain.errors import BulkError

router = APIRouter(prefix=PREFIX, route_class=PortalRoute)
OwnCompany = Depends(owned(owns_company, "company_id"))
OwnJob = Depends(owned(owns_bulk_job, "job_id"))

TEMPLATE_NAME = "ikkatsu_touroku.xlsx"
CHOOSE_FILE = "ファイルを選択してください。"
# While a job runs its page asks the browser to load it again after this many seconds (an
# HTTP header: it works without JavaScript).
REFRESH_SECONDS = 3


def _status_ja(status: str) -> str:
    try:
        return STATUS_JA[RowStatus(status)]
    except ValueError:
        return status


def _sites(contract: Any) -> list[Any]:
    return sorted(contract.sites.values(), key=lambda site: site.name)


def _upload_page(request: Request, contract: Any, form: Form, **context: Any) -> Response:
    return render(request, "bulk/upload.html", status_code=422 if form.errors else 200,
                  contract=contract, sites=_sites(contract), form=form, status_ja=_status_ja, **context)


@router.get("/bulk/template.xlsx")
def bulk_template(customer: CustomerDep) -> Response:
    return Response(build_template(), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{TEMPLATE_NAME}"'})


@router.get("/companies/{company_id}/bulk")
def bulk_form(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany) -> Response:
    contract = request.app.state.runtime.application.companies.company(company_id)
    return _upload_page(request, contract, Form(order=("file",)))


@router.post("/companies/{company_id}/bulk")
async def bulk_upload(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany) -> Response:
    runtime = request.app.state.runtime
    contract = await run_in_threadpool(runtime.application.companies.company, company_id)
    data = await request.form()  # parsed once (the CSRF check read it), within the upload's body limit
    upload = data.get("file")
    dry_run = data.get("action") != "register"
    form = Form(order=("file",))
    if not isinstance(upload, UploadFile) or not upload.filename:
        form.add("file", CHOOSE_FILE)
        return _upload_page(request, contract, form)
    content = await upload.read()
    try:
        answer, _ = await run_in_threadpool(
            lambda: runtime.bulk.submit(company_id, content, upload.filename or "", dry_run=dry_run)
        )
    except BulkError as error:
        form.add("file", error.message_ja)
        return _upload_page(request, contract, form)
    if answer.get("job_id"):
        return redirect(f"{PREFIX}/bulk/{answer['job_id']}")
    # A dry run small enough to be checked at once keeps no job: its rows are shown here.
    return _upload_page(request, contract, form, job=answer)


@router.get("/bulk/{job_id}")
def bulk_job(request: Request, customer: CustomerDep, job_id: UUID = OwnJob) -> Response:
    runtime = request.app.state.runtime
    job = runtime.bulk.job(job_id)
    contract = runtime.application.companies.company(UUID(job["company_id"]))
    response = render(request, "bulk/job.html", contract=contract, job=job, status_ja=_status_ja)
    if job["status"] != "done":
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


@router.get("/bulk/{job_id}/result.xlsx")
def bulk_result(request: Request, customer: CustomerDep, job_id: UUID = OwnJob) -> Response:
    name, content = request.app.state.runtime.bulk.result_sheet(job_id)
    return Response(content, media_type=XLSX, headers=attachment(name))

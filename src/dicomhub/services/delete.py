"""DELETE of a study, series or instance (as the Azure DICOM service offers).

The index rows go first, in one transaction, so the instances vanish from
every search and retrieve at once; then the blobs are removed. A crash between
the two leaves only unreferenced files, never an index row without its file.
Every DELETE, whatever its outcome, leaves one line in the audit log
(``dicomhub.audit``): who, the UIDs, the instances removed and the status.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import audit
from ..errors import DicomhubError, NotFound
from ..index import StoredInstance
from ..uids import path_uids
from ..web import services

logger = logging.getLogger(__name__)


async def delete_resource(request: Request) -> Response:
    params = request.path_params
    uids = (params.get("study"), params.get("series"), params.get("instance"))
    removed: list[StoredInstance] = []
    status = 500
    try:
        removed = await run_in_threadpool(
            services(request).index.delete, *path_uids(request)
        )
        response = await _remove_blobs(request, removed)
        status = response.status_code
        return response
    except DicomhubError as exc:
        status = exc.status
        raise
    finally:
        audit.deleted(request, status, len(removed), uids)


async def _remove_blobs(request: Request, removed: list[StoredInstance]) -> Response:
    svc = services(request)
    if not removed:
        raise NotFound("nothing is stored under this URL; nothing was deleted")

    for item in removed:
        try:
            await run_in_threadpool(svc.store.delete, item.blob_key)
        except OSError:
            # The index no longer references the file; log and carry on.
            logger.exception("could not remove blob %s", item.blob_key)
    logger.info("deleted %d instance(s)", len(removed))
    return Response(status_code=204)


routes = [
    Route("/studies/{study}", delete_resource, methods=["DELETE"]),
    Route(
        "/studies/{study}/series/{series}", delete_resource, methods=["DELETE"]
    ),
    Route(
        "/studies/{study}/series/{series}/instances/{instance}",
        delete_resource,
        methods=["DELETE"],
    ),
]

"""The interactive API documentation at /docs (Swagger UI), served from the gateway itself.

FastAPI's own /docs and /redoc load unpinned scripts from a CDN into the origin that holds
the login token, and are blank offline. Here Swagger UI's files come from the
`fastapi-offline` package, a pinned dependency, and the page's one inline script is allowed
by its hash in the page's Content-Security-Policy. There is no /redoc: one documentation
page is enough, and Redoc needs more from the policy (styles and workers it makes itself).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from gateway.api.guard import content_security_policy

ASSETS: Final = "/docs/assets"
_INLINE_SCRIPT: Final = re.compile(rb"<script>(.*?)</script>", re.S)


def install_docs(app: FastAPI) -> None:
    """Adds /docs and its assets to an app made with `docs_url=None, redoc_url=None`."""
    assert app.openapi_url is not None
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        # Swagger UI would send the API's description to an online validator for its badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
              for s in _INLINE_SCRIPT.findall(page.body)]
    policy = content_security_policy(*hashes)

    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page.body, headers={"Content-Security-Policy": policy})

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

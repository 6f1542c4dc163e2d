"""`/unsubscribe?token=…`: the link in every email. Works without login.

GET shows a one-button page (link scanners that prefetch must not unsubscribe anyone);
POST — the button, or a mail client's RFC 8058 one-click request — turns the emails off.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.core.errors import ValidationError
from app.notifications import services

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>mlpatron · email preferences</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}</style></head><body><h1>Email preferences</h1>{body}</body></html>"""


async def unsubscribe_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    if request.method == "GET":
        form = (f'<p>Stop these notification emails?</p><form method="post" action="/unsubscribe?token='
                f'{html.escape(token, quote=True)}"><button type="submit">Unsubscribe</button></form>')
        return HTMLResponse(_PAGE.format(body=form))
    try:
        kind = await services.unsubscribe(token)
    except ValidationError:
        return HTMLResponse(_PAGE.format(body="<p>This unsubscribe link is not valid.</p>"), status_code=400)
    what = html.escape(kind.value.replace("_", " ").lower()) if kind else "these"
    return HTMLResponse(_PAGE.format(body=f"<p>Done: no more emails about {what}.</p>"))

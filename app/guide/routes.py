"""`/llms.txt`, `/agent-guide.md` and `/schema.graphql`: documentation for agents, served by the
platform itself so it always describes the API that answers next to it."""

from __future__ import annotations

from functools import cache

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.core.settings import Settings
from app.guide.render import addressed, agent_guide, llms_txt


def guide_routes(sdl: str, settings: Settings) -> list[Route]:
    """The guide is rendered once (on first request); each answer only names the host the client
    reached in its links."""

    @cache
    def template() -> str:
        return agent_guide(sdl, settings)

    def base_url(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def guide_md(request: Request) -> Response:
        return PlainTextResponse(addressed(template(), base_url(request)),
                                 media_type="text/markdown; charset=utf-8")

    async def llms(request: Request) -> Response:
        return PlainTextResponse(llms_txt(base_url(request)))

    async def schema_sdl(_: Request) -> Response:
        return PlainTextResponse(sdl)

    return [Route("/llms.txt", llms), Route("/agent-guide.md", guide_md), Route("/schema.graphql", schema_sdl)]

"""`/<provider>/...`: every dialect of each simulated provider, bent by its scripted faults.

/<provider>/v1/chat/completions, /v1/embeddings      OpenAI
/<provider>/v1/messages                              Anthropic
/<provider>/v1/models[/{id}]                         Anthropic with anthropic-version, Cohere (the list) with the cohere
                                                     SDK's x-fern-sdk-name or page_size/page_token, else OpenAI
/<provider>/api/v1/chat/completions, models, key     OpenRouter
/<provider>/v1beta/models[/{model}[:action]]         Gemini
/<provider>/v2/chat                                  Cohere
"""

from __future__ import annotations

from aiohttp import web

from llmagg_simulator import anthropic_routes, cohere_routes, gemini_routes, openai_routes


async def list_models(request: web.Request) -> web.StreamResponse:
    if anthropic_routes.speaks_anthropic(request):
        return await anthropic_routes.list_models(request)
    if cohere_routes.speaks_cohere(request):
        return await cohere_routes.list_models(request)
    return await openai_routes.list_models(request)


async def retrieve_model(request: web.Request) -> web.StreamResponse:
    speaks_anthropic = anthropic_routes.speaks_anthropic(request)
    return await (anthropic_routes.retrieve_model if speaks_anthropic else openai_routes.retrieve_model)(request)


def add_provider_routes(app: web.Application) -> None:
    anthropic_routes.add_routes(app)
    openai_routes.add_routes(app)
    app.router.add_get("/{provider}/v1/models", list_models)
    app.router.add_get("/{provider}/v1/models/{model:.+}", retrieve_model)
    openai_routes.add_catch_all(app)  # after every /v1/ route
    gemini_routes.add_routes(app)
    cohere_routes.add_routes(app)

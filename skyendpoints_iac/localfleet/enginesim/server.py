"""The simulator's HTTP face: vLLM's OpenAI-compatible server, on aiohttp.

Routes as vLLM's ``vllm/entrypoints/openai/api_server.py`` and llm-d-inference-sim ``docs/api.md``
(serving-facts.md §9): ``GET /health``, ``/health/ready``, ``/v1/models``, ``/metrics``; ``POST
/v1/completions`` and ``/v1/chat/completions``, both with ``stream: true`` as server-sent events ending in
``data: [DONE]``. Every response carries ``x-sky-replica`` naming the replica (pod) that served it, so
tests and benches can see where the router sent a request.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from . import REPLICA_HEADER
from .engine import Engine, EngineConfig, PromptTooLong, QueueFull, Request

ENGINE_KEY = web.AppKey("engine", Engine)
REPLICA_KEY = web.AppKey("replica", str)
API_KEY_KEY = web.AppKey("api_key", str)


def _error(status: int, message: str, err_type: str) -> web.Response:
    """OpenAI-style error body, as vLLM's ``ErrorResponse``."""
    return web.json_response(
        {"error": {"message": message, "type": err_type, "param": None, "code": status}}, status=status
    )


@web.middleware
async def _replica_header(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REPLICA_HEADER] = request.app[REPLICA_KEY]
        raise
    if not resp.prepared:  # a stream sets it itself before its headers go out
        resp.headers[REPLICA_HEADER] = request.app[REPLICA_KEY]
    return resp


@web.middleware
async def _api_key(request: web.Request, handler: Any) -> web.StreamResponse:
    """``--api-key``: vLLM checks ``Authorization: Bearer`` on ``/v1`` routes only."""
    key = request.app[API_KEY_KEY]
    if key and request.path.startswith("/v1") and request.headers.get("Authorization") != f"Bearer {key}":
        resp = _error(401, "Unauthorized", "Unauthorized")
        resp.headers[REPLICA_HEADER] = request.app[REPLICA_KEY]
        return resp
    return await handler(request)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def chat_prompt(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(rendered prompt, last user message): a plain chat template, stable so prefixes cache."""
    rendered = "".join(f"<|{m.get('role', 'user')}|> {_content_text(m.get('content'))}\n" for m in messages)
    user = [m for m in messages if m.get("role") == "user"]
    return rendered + "<|assistant|>", _content_text(user[-1].get("content")) if user else ""


async def health(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def models(request: web.Request) -> web.Response:
    cfg = request.app[ENGINE_KEY].cfg
    data = [
        {
            "id": name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": cfg.model,
            "parent": None,
            "max_model_len": cfg.max_model_len,
        }
        for name in cfg.served_model_names
    ]
    return web.json_response({"object": "list", "data": data})


async def metrics(request: web.Request) -> web.Response:
    body, ctype = request.app[ENGINE_KEY].metrics.exposition()
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = ctype
    return resp


async def completions(request: web.Request) -> web.StreamResponse:
    return await _serve(request, chat=False)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _serve(request, chat=True)


async def _serve(request: web.Request, *, chat: bool) -> web.StreamResponse:
    engine = request.app[ENGINE_KEY]
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
    except ValueError as exc:
        return _error(400, f"invalid JSON body: {exc}", "BadRequestError")
    model = body.get("model") or engine.cfg.served_model_names[0]
    if model not in engine.cfg.served_model_names:
        return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty list", "BadRequestError")
        prompt, echo = chat_prompt(messages)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = "".join(p for p in prompt if isinstance(p, str))
        if not isinstance(prompt, str):
            return _error(400, "'prompt' must be a string", "BadRequestError")
        echo = prompt
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    try:
        req = engine.plan(prompt, echo, max_tokens, body.get("seed"))
    except PromptTooLong as exc:
        return _error(400, str(exc), "BadRequestError")
    rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
    created = int(time.time())
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await _stream(request, engine, req, rid, created, model, chat, usage)
    try:
        text, reason = [], None
        gen = engine.generate(req)
        try:
            async for tok in gen:
                text.append(tok.text)
                reason = tok.finish_reason or reason
        finally:
            await gen.aclose()
    except QueueFull as exc:
        return _error(429, str(exc), "TooManyRequests")
    out = "".join(text).lstrip()
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": out}, "logprobs": None, "finish_reason": reason}
        if chat
        else {"index": 0, "text": out, "logprobs": None, "finish_reason": reason}
    )
    return web.json_response(
        {
            "id": rid,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": _usage(req),
        }
    )


def _usage(req: Request) -> dict[str, Any]:
    return {
        "prompt_tokens": len(req.prompt),
        "completion_tokens": len(req.output),
        "total_tokens": len(req.prompt) + len(req.output),
        "prompt_tokens_details": {"cached_tokens": req.cached_tokens},
    }


async def _stream(
    request: web.Request,
    engine: Engine,
    req: Request,
    rid: str,
    created: int,
    model: str,
    chat: bool,
    include_usage: bool,
) -> web.StreamResponse:
    obj = "chat.completion.chunk" if chat else "text_completion"
    gen = engine.generate(req)
    resp: web.StreamResponse | None = None

    async def send(payload: Any) -> None:
        assert resp is not None
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        await resp.write(f"data: {data}\n\n".encode())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": rid, "object": obj, "created": created, "model": model, "choices": choices, **extra}

    try:
        async for tok in gen:
            if resp is None:  # headers only once admitted: a full queue still answers 429
                resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
                resp.headers[REPLICA_HEADER] = request.app[REPLICA_KEY]
                await resp.prepare(request)
                if chat:
                    await send(
                        chunk(
                            [
                                {
                                    "index": 0,
                                    "delta": {"role": "assistant", "content": ""},
                                    "logprobs": None,
                                    "finish_reason": None,
                                }
                            ]
                        )
                    )
            text = tok.text.lstrip() if tok.index == 0 else tok.text
            if chat:
                await send(chunk([{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]))
            else:
                await send(chunk([{"index": 0, "text": text, "logprobs": None, "finish_reason": None}]))
            if tok.finish_reason:
                final = {"index": 0, "logprobs": None, "finish_reason": tok.finish_reason}
                final.update({"delta": {}} if chat else {"text": ""})
                await send(chunk([final]))
    except QueueFull as exc:
        return _error(429, str(exc), "TooManyRequests")
    finally:
        await gen.aclose()
    assert resp is not None
    if include_usage:
        await send(chunk([], usage=_usage(req)))
    await send("[DONE]")
    await resp.write_eof()
    return resp


def make_app(cfg: EngineConfig, *, replica: str, api_key: str = "") -> web.Application:
    app = web.Application(middlewares=[_replica_header, _api_key])
    app[ENGINE_KEY] = Engine(cfg)
    app[REPLICA_KEY] = replica
    app[API_KEY_KEY] = api_key
    app.router.add_get("/health", health)
    app.router.add_get("/health/ready", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0 = any free port); returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # aiohttp keeps the asyncio server here; the only way to learn an ephemeral port
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
    return runner, int(bound)

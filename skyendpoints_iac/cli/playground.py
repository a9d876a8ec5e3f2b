"""``sky endpoint chat`` and ``sky endpoint playground``: talk to an endpoint's OpenAI-compatible API."""

from __future__ import annotations

import os

import typer

from ..errors import SkyError
from .app import endpoint_app, err, out
from .runtime import backend_option, env_option, make_runtime, root_option


def _target(
    name: str,
    env,
    backend,
    pulumi_root,
    url: str | None,
    api_key_env: str | None,
    insecure: bool,
    ca_cert: str | None,
    connect_to: str | None = None,
):
    """URL from --url or the stack outputs (else the front door hostname); key from the stack's secret
    outputs, or from the environment variable named by --api-key-env."""
    from ..automation.openai_api import Target, api_key_from_outputs
    from ..automation.operations import endpoint_outputs, load_desired

    rt = make_runtime(env, backend, pulumi_root, engine=api_key_env is None)
    desired = load_desired(rt, allow_cache=True)
    live = desired.endpoints
    if name not in live:
        raise SkyError(
            f"endpoint '{name}' is not deployed in environment '{rt.env}' (deployed: {', '.join(sorted(live)) or 'none'})"
        )
    spec = desired.endpoints[name].spec
    outputs = {}
    if api_key_env is None:
        from ..automation.program import empty_program

        outputs = rt.engine_factory(rt.env, empty_program).outputs()
    key = None
    if spec.auth.api_key != "none":
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise SkyError(f"--api-key-env {api_key_env}: that environment variable is not set")
        else:
            key = api_key_from_outputs(
                outputs, name, spec.auth.secret_key if spec.auth.api_key == "secret" else "api-key"
            )
            if key is None:
                raise SkyError(
                    f"the stack has no API key output for '{name}'"
                    + (
                        " (auth.api_key: secret keeps it in your own Secret: pass --api-key-env)"
                        if spec.auth.api_key == "secret"
                        else ""
                    )
                )
    from ..blueprint.serving import endpoint_hostname

    base = url or endpoint_outputs(outputs, name).get("url") or f"https://{endpoint_hostname(spec, desired.fleet)}"
    return Target(base_url=base, api_key=key, verify=False if insecure else (ca_cert or True), connect_to=connect_to)


def _common():
    return dict(
        url=typer.Option(
            None,
            "--url",
            help="Base URL to use instead of the endpoint's (e.g. a gateway address).",
            show_default=False,
        ),
        api_key_env=typer.Option(
            None,
            "--api-key-env",
            help="Read the API key from this environment variable instead of the stack outputs.",
            show_default=False,
        ),
        insecure=typer.Option(False, "--insecure", help="Skip TLS verification (self-signed certificates)."),
        ca_cert=typer.Option(
            None,
            "--ca-cert",
            envvar="SKY_CA_CERT",
            help="CA bundle to verify the endpoint's certificate.",
            show_default=False,
        ),
        connect_to=typer.Option(
            None,
            "--connect-to",
            envvar="SKY_CONNECT_TO",
            help="Connect to this address instead of what DNS answers for the endpoint's hostname; TLS and "
            "the Host header still use the hostname (DNS not set up yet, or the local fleet's front door: "
            "'sky fleet local env' exports it).",
            show_default=False,
        ),
    )


_o = _common()


@endpoint_app.command("chat")
def chat_cmd(
    name: str = typer.Argument(..., help="Endpoint name.", show_default=False),
    prompt: str = typer.Argument(..., help="The message to send.", show_default=False),
    model: str | None = typer.Option(None, "--model", help="Model id. Default: the first one /v1/models lists."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1),
    env: str | None = env_option(),
    url: str | None = _o["url"],
    api_key_env: str | None = _o["api_key_env"],
    insecure: bool = _o["insecure"],
    ca_cert: str | None = _o["ca_cert"],
    connect_to: str | None = _o["connect_to"],
    loop: bool = typer.Option(
        False,
        "--loop",
        help="Keep sending the prompt, one request at a time, and print each outcome with its time; Ctrl+C "
        "stops and prints the error window. Exits 1 if any request failed. For watching a failover.",
    ),
    interval: float = typer.Option(0.5, "--interval", min=0.0, help="With --loop: seconds between requests."),
    count: int = typer.Option(0, "--count", min=0, help="With --loop: stop after N requests (0: until Ctrl+C)."),
    backend: str | None = backend_option(),
    pulumi_root: str | None = root_option(),
) -> None:
    """Send one prompt through the endpoint's OpenAI-compatible API and print the answer.

    Examples:

      sky endpoint chat glm-prod "Say hello in one word."

      sky endpoint chat glm-prod "2+2?" --insecure --max-tokens 16

      sky endpoint chat glm-prod "still there?" --loop --max-tokens 4   # then: sky fleet local kill local-1
    """
    from ..automation.openai_api import chat, chat_loop, first_model

    target = _target(name, env, backend, pulumi_root, url, api_key_env, insecure, ca_cert, connect_to)
    if loop:

        def report(at: float, ok: bool, what: str) -> None:
            line = " ".join(what.split())[:100]
            out.print(f"{at:8.2f}s {'ok    ' if ok else 'FAILED'} {line}", markup=False, highlight=False)

        summary = chat_loop(
            target,
            prompt,
            report,
            model=model or first_model(target),
            max_tokens=max_tokens,
            interval=interval,
            count=count,
        )
        window = summary.error_window_s
        err.print(
            f"{summary.sent} sent, {summary.failed} failed"
            + (
                f"; error window {window:.2f}s (from {summary.first_failure_s:.2f}s to {summary.last_failure_s:.2f}s)"
                if window is not None
                else ""
            ),
            markup=False,
        )
        if summary.failed:
            raise typer.Exit(1)
        return
    text, usage = chat(target, prompt, model=model, max_tokens=max_tokens)
    out.print(text, markup=False, highlight=False)
    if usage:
        err.print(
            f"[dim]tokens: prompt {usage.get('prompt_tokens', '?')}, completion {usage.get('completion_tokens', '?')}[/dim]"
        )


@endpoint_app.command("playground")
def playground_cmd(
    name: str = typer.Argument(..., help="Endpoint name.", show_default=False),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Local port (0: any free port)."),
    model: str | None = typer.Option(None, "--model", help="Model id. Default: the first one /v1/models lists."),
    env: str | None = env_option(),
    url: str | None = _o["url"],
    api_key_env: str | None = _o["api_key_env"],
    insecure: bool = _o["insecure"],
    ca_cert: str | None = _o["ca_cert"],
    connect_to: str | None = _o["connect_to"],
    backend: str | None = backend_option(),
    pulumi_root: str | None = root_option(),
) -> None:
    """Serve a small chat page on localhost that talks to the endpoint (the API key stays server-side).

    Examples:

      sky endpoint playground glm-prod

      sky endpoint playground glm-prod --port 9000 --insecure
    """
    from ..automation.playground import Playground

    target = _target(name, env, backend, pulumi_root, url, api_key_env, insecure, ca_cert, connect_to)
    try:
        server = Playground(target, name, model=model, port=port)
    except OSError as exc:
        raise SkyError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another --port") from None
    out.print(f"playground for {name}: {server.url}  (Ctrl+C to stop)", markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

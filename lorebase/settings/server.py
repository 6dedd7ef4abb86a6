"""Serving: the CPU split between the API and vLLM, the HTTP server, and the chat UI."""

from __future__ import annotations

from pydantic import Field, SecretStr

from lorebase.settings.section import Section


class CpuSettings(Section):
    """How `lorebase serve` shares the CPU cores between its own process and the vLLM worker
    (lorebase/cpu_budget.py; auto: on 2 cores vLLM binds both and the API runs 1 thread, on 4 the API
    gets core 3, on 16 cores 14-15)."""

    vllm_cpus: str | None = Field(None, description="CPUs for vLLM's compute threads, one pinned thread each (e.g. 0-13); unset: auto.")
    api_cpus: str | None = Field(
        None, description="CPUs the API process (embedder, BM25, FAISS, grounding) is pinned to (e.g. 14-15), or `all`; unset: auto."
    )
    api_threads: int = Field(0, ge=0, description="Threads of the API process's torch, FAISS and BLAS pools; 0: auto (its cores, 1 when sharing).")


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Bind address. Any non-loopback address requires api_keys.")
    port: int = Field(8000, ge=1, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list, description="Bearer keys; required when not bound to loopback.")
    max_request_bytes: int = Field(1_000_000, gt=0)
    model_alias: str = Field(
        "lorebase", min_length=1,
        description="Model id that always means the served default: the promoted adapter when there is one, else the base model.",
    )


class UISettings(Section):
    """The Chainlit chat UI served at /chat, and its login."""

    enabled: bool = Field(True, description="Serve the chat UI at /chat (needs the chainlit package); the /feedback page is always served.")
    name: str = Field("lorebase", min_length=1, description="Assistant name shown in the chat.")
    username: str = Field("lorebase", min_length=1, description="Login name for the chat UI when ui.password is set.")
    password: SecretStr | None = Field(
        None, description="Chat UI password; unset means no login (one local user), allowed only when server.host is loopback."
    )
    auth_secret: SecretStr | None = Field(
        None, description="Key that signs chat UI sessions (Chainlit's CHAINLIT_AUTH_SECRET, which wins if set); made once in the data home when unset."
    )
    history_turns: int = Field(3, ge=0, le=20, description="Earlier question/answer pairs of a conversation sent with each new question.")

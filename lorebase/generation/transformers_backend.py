"""In-process generation with transformers (fp32 on CPU) and peft LoRA adapters.

The model is loaded once. Adapters live in one ``PeftModel`` under their names; a request picks one
with ``set_adapter`` or runs the base with the adapters disabled. ``generate`` runs in a thread and
streams through a streamer of ours into the event loop; a stopping-criteria flag ends it early when
the consumer goes away. One generation at a time per model (a lock), behind the shared queue.

Structured output (``json_schema``) is not supported here: it raises ``InvalidInput`` naming the
backends that support it (``vllm``, ``openai``). Stop strings are applied here, on the text.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorebase.errors import EngineUnavailable, InvalidInput, ModelNotAvailable, UnknownModel
from lorebase.generation.backend import (
    ChatTokenizer,
    Completion,
    Delta,
    GenerationRequest,
    Message,
    Usage,
    check_prompt_fits,
    collect,
    fit_max_tokens,
    model_context_length,
)
from lorebase.generation.queue import GenerationQueue

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


class StopScanner:
    """Cuts streamed text at the first stop string, holding back only what could start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self.stops), default=1) - 1
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; sets ``stopped`` once a stop string appears."""
        if self.stopped:
            return ""
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self._pending = self._pending[: min(hits)], ""
            return out
        cut = len(self._pending) - self._hold
        if cut <= 0:
            return ""
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out

    def flush(self) -> str:
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


@dataclass
class _Run:
    """One generation's shared state between the event loop and the generate thread."""

    cancel: threading.Event = field(default_factory=threading.Event)
    generated: int = 0  # tokens produced so far (read by tests and for usage)
    last_token: int | None = None
    error: BaseException | None = None


def _make_streamer(tokenizer: Any, loop: asyncio.AbstractEventLoop, out: asyncio.Queue[str | None], run: _Run) -> Any:
    """A streamer that hands each token's text to the event loop as soon as it is whole.

    Not transformers' TextStreamer: that one holds text back until the next space, so a long run
    without spaces (code, a URL) would arrive all at the end and a stop string in it could not end
    generation early. Here the text is decoded over a short window of recent tokens (so tokenizers
    that drop a leading space decode consistently) and emitted unless it ends in an incomplete
    UTF-8 character, which waits for the next token.
    """
    from transformers.generation.streamers import BaseStreamer

    class LoopStreamer(BaseStreamer):
        def __init__(self) -> None:
            self.tokens: list[int] = []
            self.prefix_offset = 0  # start of the decoding window
            self.read_offset = 0  # tokens before this are emitted
            self.prompt_seen = False

        def _send(self, item: str | None) -> None:
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                run.cancel.set()

        def _decode(self, start: int, stop: int | None = None) -> str:
            return str(tokenizer.decode(self.tokens[start:stop], skip_special_tokens=True))

        def put(self, value: torch.Tensor) -> None:
            if not self.prompt_seen:  # generate() first hands over the prompt
                self.prompt_seen = True
                return
            new = [int(t) for t in value.reshape(-1)]
            run.generated += len(new)
            run.last_token = new[-1]
            self.tokens.extend(new)
            before = self._decode(self.prefix_offset, self.read_offset)
            now = self._decode(self.prefix_offset)
            if len(now) > len(before) and not now.endswith("\ufffd"):
                self._send(now[len(before) :])
                self.prefix_offset, self.read_offset = self.read_offset, len(self.tokens)

        def end(self) -> None:
            rest = self._decode(self.prefix_offset)[len(self._decode(self.prefix_offset, self.read_offset)) :]
            if rest:
                self._send(rest)
            self._send(None)

    return LoopStreamer()


def _cancel_criteria(run: _Run) -> Any:
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), run.cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return Cancelled()


class TransformersBackend:
    """A generator running in this process; see the module docstring."""

    def __init__(
        self,
        model_dir: Path,
        *,
        base_model: str,
        queue: GenerationQueue,
        context_length: int | None = None,
        dtype: str = "float32",
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        if not (model_dir / "config.json").is_file():
            raise ModelNotAvailable(f"{model_dir} is not a Hugging Face model folder (no config.json)")
        self.base_model = base_model
        self.model_dir = model_dir
        self.context_length = context_length or model_context_length(model_dir)
        self._tokenizer = ChatTokenizer(model_dir)
        self._base: PreTrainedModel = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
        self._base.eval()
        self._peft: Any = None  # a PeftModel once the first adapter is loaded
        self._adapters: dict[str, Path] = {}
        self._queue = queue
        self._lock = asyncio.Lock()  # one generate (or adapter change) at a time on this model
        self.last_run: _Run | None = None

    @classmethod
    async def open(
        cls,
        model_dir: Path,
        *,
        base_model: str,
        queue: GenerationQueue,
        context_length: int | None = None,
        adapters: Mapping[str, Path] | None = None,
        dtype: str = "float32",
    ) -> TransformersBackend:
        """Load the model (in a thread, it takes seconds) and the named adapters."""
        backend = await asyncio.to_thread(cls, model_dir, base_model=base_model, queue=queue, context_length=context_length, dtype=dtype)
        for name, path in (adapters or {}).items():
            await backend.load_adapter(name, path)
        return backend

    @property
    def queue(self) -> GenerationQueue:
        """The bounded line every request of this backend goes through (/metrics and summaries read it)."""
        return self._queue

    # --- models and adapters -------------------------------------------------------------------

    async def models(self) -> list[str]:
        return [self.base_model, *self._adapters]

    async def load_adapter(self, name: str, path: Path) -> None:
        """Load a peft LoRA adapter under ``name``; an adapter already of that name is replaced."""
        if name == self.base_model:
            raise InvalidInput(f"an adapter cannot take the base model's name {name!r}")
        if not (path / "adapter_config.json").is_file():
            raise ModelNotAvailable(f"no LoRA adapter in {path} (adapter_config.json is missing)")
        async with self._lock:
            await asyncio.to_thread(self._load_adapter, name, path)

    def _load_adapter(self, name: str, path: Path) -> None:
        from peft import PeftModel

        if name in self._adapters:
            self._delete_adapter(name)
        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self._base, path, adapter_name=name, is_trainable=False)
        else:
            self._peft.load_adapter(path, adapter_name=name, is_trainable=False)
        self._peft.eval()
        self._adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        if name not in self._adapters:
            raise UnknownModel(f"no adapter named {name!r} is loaded (loaded: {', '.join(self._adapters) or 'none'})")
        async with self._lock:
            await asyncio.to_thread(self._delete_adapter, name)

    def _delete_adapter(self, name: str) -> None:
        del self._adapters[name]
        if self._adapters:
            if name in self._peft.active_adapters:
                self._peft.set_adapter(next(iter(self._adapters)))
            self._peft.delete_adapter(name)
        else:
            # peft cannot hold zero adapters: take the LoRA layers out and go back to the plain model.
            self._base = self._peft.unload()
            self._peft = None

    def _check_model(self, model: str | None) -> None:
        if model is None or model == self.base_model or model in self._adapters:
            return
        raise UnknownModel(f"the model {model!r} does not exist; available: {', '.join([self.base_model, *self._adapters])}")

    # --- generation ----------------------------------------------------------------------------

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return self._tokenizer.count(messages)

    async def complete(self, req: GenerationRequest) -> Completion:
        return await collect(self.stream(req))

    async def stream(self, req: GenerationRequest) -> AsyncGenerator[Delta, None]:
        if req.json_schema is not None:
            raise InvalidInput("structured output (json_schema) needs the vllm or openai generation backend, not transformers")
        self._check_model(req.model)
        async with self._queue.slot(), self._lock:
            self._check_model(req.model)  # an adapter may have gone while this request waited
            prompt_ids = await asyncio.to_thread(self._tokenizer.encode_prompt, req.messages)
            check_prompt_fits(len(prompt_ids), self.context_length)
            max_new = fit_max_tokens(len(prompt_ids), req.max_tokens, self.context_length)

            loop = asyncio.get_running_loop()
            texts: asyncio.Queue[str | None] = asyncio.Queue()  # at most max_new items
            run = _Run()
            self.last_run = run
            worker = threading.Thread(
                target=self._generate,
                args=(req, prompt_ids, max_new, run, _make_streamer(self._tokenizer.tokenizer, loop, texts, run)),
                name="lorebase-generate",
                daemon=True,
            )
            scanner = StopScanner(req.stop)
            worker.start()
            try:
                while True:
                    text = await texts.get()
                    if text is None:
                        break
                    out = scanner.feed(text)
                    if out:
                        yield Delta(out)
                    if scanner.stopped:
                        run.cancel.set()
                        break
                await asyncio.to_thread(worker.join)
                if run.error is not None:
                    raise EngineUnavailable(f"generation failed: {run.error}") from run.error
                tail = scanner.flush()
                if tail:
                    yield Delta(tail)
                eos = self._eos_ids()
                if scanner.stopped or (run.last_token is not None and run.last_token in eos) or run.generated < max_new:
                    finish = "stop"
                else:
                    finish = "length"
                yield Delta("", finish, Usage(len(prompt_ids), run.generated))
            finally:
                run.cancel.set()
                if worker.is_alive():
                    # Keep the lock until generate has seen the flag (one step), so runs never overlap.
                    await asyncio.shield(asyncio.to_thread(worker.join))

    def _eos_ids(self) -> set[int]:
        eos = self._base.generation_config.eos_token_id
        if eos is None:
            eos = self._tokenizer.tokenizer.eos_token_id
        return set(eos) if isinstance(eos, list) else ({eos} if eos is not None else set())

    def _generate(self, req: GenerationRequest, prompt_ids: list[int], max_new: int, run: _Run, streamer: Any) -> None:
        import torch
        from transformers import StoppingCriteriaList

        try:
            if req.seed is not None:
                torch.manual_seed(req.seed)
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": req.temperature, "top_p": req.top_p, "top_k": 0}
                if req.temperature > 0
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            )
            tok = self._tokenizer.tokenizer
            kwargs: dict[str, Any] = dict(
                input_ids=torch.tensor([prompt_ids]),
                attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                max_new_tokens=max_new,
                repetition_penalty=req.repetition_penalty,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_cancel_criteria(run)]),
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                **sampling,
            )
            with torch.inference_mode():
                if self._peft is None or req.model is None or req.model == self.base_model:
                    if self._peft is None:
                        self._base.generate(**kwargs)  # type: ignore[operator]
                    else:
                        with self._peft.disable_adapter():
                            self._peft.generate(**kwargs)
                else:
                    self._peft.set_adapter(req.model)
                    self._peft.generate(**kwargs)
        except BaseException as e:  # handed to the event loop, which raises it to the consumer
            run.error = e
            streamer.end()

    async def aclose(self) -> None:
        async with self._lock:
            self._peft = None
            self._adapters.clear()

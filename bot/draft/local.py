"""Drafting with a local causal language model through transformers, for a brand that wants no endpoint.

With `BOT_LLM_PROVIDER=transformers` and `BOT_LLM_MODEL=<folder>`, drafts come from a chat model saved in
that folder (weights, tokenizer and its chat template), run on this machine's CPU: no server, no API key,
and no customer message leaves the host. The folder is read offline; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import torch
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, AutoTokenizer, BatchEncoding, GenerationConfig, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from bot.draft.backend import Chat, Completion
from bot.errors import ConfigError, DraftError


class TransformersBackend:
    """A chat model from a local folder, on the CPU; `load` builds one, and reports a bad folder at start."""

    name = "transformers"
    max_concurrency = 1  # one generation already uses every core: a second one would only slow both down

    def __init__(self, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> None:
        self._tokenizer = tokenizer
        self._model = model
        self._lock = asyncio.Lock()

    @classmethod
    def load(cls, folder: Path) -> TransformersBackend:
        """The tokenizer and model saved in `folder`; ConfigError names the folder and what is wrong with it."""
        if not folder.is_dir():
            raise ConfigError(f"language model folder {folder}: not found")
        transformers_logging.disable_progress_bar()  # a progress bar per start is noise in service logs
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            # Checked before the weights load: a folder with the wrong model is reported fast and quietly.
            if not tokenizer.chat_template:
                raise ConfigError(f"language model folder {folder}: its tokenizer has no chat template")
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, SafetensorError) as error:  # what transformers raises for a folder it can't use
            reason = str(error).strip().split("\n")[0] or error.__class__.__name__
            raise ConfigError(f"language model folder {folder}: not a causal language model ({reason})") from error
        # A generation_config.json may bring sampling and length defaults (top_p, max_length...) that clash with
        # what each call decides, and generate() logs every clash: only the special tokens are kept. Without a
        # pad token generate() warns too; end-of-sequence is the usual stand-in.
        defaults = model.generation_config
        model.generation_config = GenerationConfig(
            bos_token_id=defaults.bos_token_id,
            eos_token_id=defaults.eos_token_id if defaults.eos_token_id is not None else tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
        return cls(tokenizer, model.eval())  # on the CPU: no device_map, so the weights stay where they load

    async def complete(self, chat: Chat, *, max_tokens: int, temperature: float) -> Completion:
        """Greedy when `temperature` is 0, sampled otherwise; at most `max_tokens` new tokens."""
        async with self._lock:
            try:
                return await asyncio.to_thread(self._generate, chat, max_tokens, temperature)
            except Exception as error:  # whatever broke, a retry of the same local model won't fix it
                raise DraftError(f"local language model failed: {error.__class__.__name__}: {error}") from error

    def _generate(self, chat: Chat, max_tokens: int, temperature: float) -> Completion:
        inputs = cast(
            BatchEncoding,
            self._tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ),
        )
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        config = GenerationConfig(max_new_tokens=max_tokens, **sampling)
        prompt: torch.Tensor = inputs["input_ids"]
        with torch.inference_mode():
            output = self._model.generate(  # type: ignore[operator]  # GenerationMixin, mixed in by the concrete class
                input_ids=prompt, attention_mask=inputs["attention_mask"], generation_config=config
            )
        new = output[0, prompt.shape[1] :]
        text = cast(str, self._tokenizer.decode(new, skip_special_tokens=True))
        return Completion(text=text, prompt_tokens=int(prompt.shape[1]), completion_tokens=int(new.shape[0]))

    async def close(self) -> None:
        """Nothing to release: the weights go with the object."""

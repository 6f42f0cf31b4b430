"""A tiny chat model built on the spot, so that the transformers backend is tested without downloading one.

The tokenizer is a word-level one trained on a few lines; its chat template marks roles with special
tokens. Given an `answer`, that whole string becomes one token and the model is trained for a moment to
say it, then end, after any chat's generation prompt: greedy decoding then drafts exactly `answer`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AddedToken, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = [
    "You are the customer service of an outdoor clothing shop . Answer in JSON .",
    "How long does standard delivery take ? Where is my order ? Can I return a jacket ?",
    "Hello , thanks for writing . Your parcel arrives in three to five working days .",
]
TRAINING_CHATS = [
    [{"role": "user", "content": "hello ?"}],
    [
        {"role": "system", "content": CORPUS[0]},
        {"role": "user", "content": "How long does standard delivery take ?"},
    ],
    [
        {"role": "system", "content": "Answer in JSON ."},
        {"role": "user", "content": "Where is my order ?"},
        {"role": "assistant", "content": "Hello , thanks for writing ."},
        {"role": "user", "content": "Can I return a jacket ? It arrives in three days"},
    ],
    [  # as long as the service's real prompts, mostly words this vocabulary doesn't know
        {"role": "system", "content": " ".join([CORPUS[0], "Northwind persona rules facts passages"] * 120)},
        {"role": "user", "content": "how long is delivery ?"},
    ],
]


def build_tiny_chat_model(folder: Path, answer: str | None = None) -> Path:
    """Save a tiny Llama and its tokenizer in `folder`; with `answer`, trained to reply exactly that."""
    torch.manual_seed(0)
    transformers_logging.disable_progress_bar()  # as the backend does: a bar per saved model is noise
    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=SPECIAL[4:],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    if answer is not None:
        tokenizer.add_tokens([AddedToken(answer, normalized=False)])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    if answer is not None:
        _teach(model, tokenizer, tokenizer.get_vocab()[answer])
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _teach(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, answer_id: int) -> None:
    """Train on a few chats: after the generation prompt comes `answer_id`, then end of sequence."""
    examples = []
    for chat in TRAINING_CHATS:
        prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=False)
        ids = torch.tensor([[*prompt, answer_id, tokenizer.eos_token_id]])
        labels = ids.clone()
        labels[0, : len(prompt)] = -100  # only the answer and its end are taught
        examples.append((ids, labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _step in range(40):
        optimizer.zero_grad()
        loss = torch.stack([model(input_ids=ids, labels=labels).loss for ids, labels in examples]).sum()
        loss.backward()
        optimizer.step()
    model.eval()

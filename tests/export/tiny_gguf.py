"""A tiny random Llama that llama.cpp's converter accepts.

tests/tiny.py's byte-level BPE tokenizer is trained on a toy corpus, so its vocabulary hashes to no
pre-tokenizer the converter knows ("BPE pre-tokenizer was not recognized") — the converter refuses it, as it
would any unknown BPE tokenizer. A SentencePiece tokenizer (tokenizer.model, the Llama 2 / Mistral kind) needs
no such hash: the converter copies its pieces and scores and llama.cpp runs the same SentencePiece algorithm.
So this variant trains a small SentencePiece BPE model on the same corpus, with ChatML's markers as symbols.
Like real SentencePiece models after `persona merge`, merged/ holds only tokenizer.json; the export links the
base model's tokenizer.model back in (see export/gguf.py: stage_converter_input).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from tests.tiny import CHATML, CORPUS


def make_gguf_tiny_model(folder: Path, *, seed: int = 0, chat_template: bool = True, hidden: int = 32,
                         layers: int = 2) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS.splitlines() * 4), model_writer=model,
                                   vocab_size=500, model_type="bpe", byte_fallback=True, character_coverage=1.0,
                                   user_defined_symbols=["<|im_start|>", "<|im_end|>"], unk_id=0, bos_id=1,
                                   eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2, num_threads=1)
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    # EOS is ChatML's end-of-turn marker, as in chat models; plain-style training appends it after each answer.
    config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "<|im_end|>",
              "unk_token": "<unk>", "pad_token": "<unk>", "add_bos_token": True, "add_eos_token": False}
    if chat_template:
        # No "▁" in front of text. transformers puts none after special tokens such as <|im_start|>, while
        # llama.cpp's SentencePiece tokenizer (add_space_prefix) puts one after every special token: with the
        # prefix on, chat prompts tokenise differently there (the export's prompt-token check catches it).
        config["add_prefix_space"] = False
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if chat_template:
        tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    llama = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama)
    with torch.no_grad():
        # A random head gives near-uniform next-token distributions whose near-ties flip under any rounding;
        # scaled up, its distributions are peaked like a trained model's (q8_0 then agrees ~99% top-1).
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(folder)
    return folder

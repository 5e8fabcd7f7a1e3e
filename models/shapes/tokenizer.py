"""A word-level tokenizer for the shapes world that drops every word it does not know.

Dropping happens in the tokenizer's own normalizer (a regex over the vocabulary), so any code that loads the
pipeline folder, ours or plain diffusers, reads "please draw a red star, thanks" exactly as "a red star".
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

SPECIAL = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
MAX_LENGTH = 20


def build_tokenizer(words: list[str], max_length: int = MAX_LENGTH) -> PreTrainedTokenizerFast:
    """A fast tokenizer over `words`: lowercase, letters only, unknown words removed, [BOS] ... [EOS]."""
    vocab = {token: i for i, token in enumerate((*SPECIAL, *words))}
    known = "|".join(sorted(words, key=len, reverse=True))
    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Lowercase(),
            normalizers.Replace(Regex(r"[^a-z]+"), " "),
            normalizers.Replace(Regex(rf"\b(?!(?:{known})\b)[a-z]+\b"), " "),
        ]
    )
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", vocab["[BOS]"]), ("[EOS]", vocab["[EOS]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        model_max_length=max_length,
    )

"""Text processing for the language models of chapter 12: byte-pair encoding (§12.5.1)."""

from udl.text.bpe import (END_OF_WORD, SPECIAL_TOKENS, BPEState, BPETokenizer, MergeComparison, compare_merges,
                          reference_merges, split_words)

__all__ = ["BPETokenizer", "BPEState", "MergeComparison", "END_OF_WORD", "SPECIAL_TOKENS", "split_words",
           "compare_merges", "reference_merges"]

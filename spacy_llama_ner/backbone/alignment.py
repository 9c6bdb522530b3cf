"""Word pieces for a batch of spans, and their alignment to spaCy tokens.

A piece feeds every non-space spaCy token whose characters it overlaps. Offsets of
byte-level BPE pieces include a leading space (" is" -> (4, 7)), and SentencePiece
pieces may too; since spaCy tokens never contain that space, strict overlap keeps a
word-initial piece from also feeding the previous token (spacy-transformers counts
one trailing character per token, which does exactly that). Zero-width pieces
(special tokens, padding) feed nothing.

A non-space token that no piece overlaps (a tokenizer that drops characters, or
zero-width offsets) is fed by the nearest piece before it in its span (or the first
piece after it), so it never silently gets a zero vector. Whitespace-only tokens
get no piece: their features are zeros.
"""
from typing import Dict, List, Sequence, Tuple

import numpy
from spacy.attrs import IDX, IS_SPACE, LENGTH
from spacy.tokens import Span
from spacy_transformers.data_classes import WordpieceBatch
from thinc.types import Ragged


def tokenize_spans(
    tokenizer, spans: Sequence[Span], max_length: int, pad_id: int, echo: bool = False
) -> Tuple[WordpieceBatch, List[numpy.ndarray]]:
    """Tokenize span texts, right-pad to the longest, and return the batch and
    each span's (n_pieces, 2) character offsets.

    echo: each row is the span's pieces twice (after any special tokens), and only
    the second copy has offsets, so only it feeds spaCy tokens: a causal model has
    read the whole span before it reaches them. max_length counts both copies."""
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    encoding = tokenizer(
        [span.text for span in spans],
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_special_tokens_mask=echo,
        truncation=True,
        max_length=specials + (max_length - specials) // 2 if echo else max_length,
    )
    ids = encoding["input_ids"]
    offsets = [numpy.asarray(o, dtype="int64").reshape(-1, 2) for o in encoding["offset_mapping"]]
    if echo:
        ids, offsets = _echo(ids, offsets, encoding["special_tokens_mask"])
    lengths = [len(row) for row in ids]
    width = max(lengths)
    input_ids = numpy.full((len(ids), width), pad_id, dtype="int64")
    attention_mask = numpy.zeros((len(ids), width), dtype="float32")
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        attention_mask[i, : len(row)] = 1.0
    strings = [tokenizer.convert_ids_to_tokens(row) for row in ids]
    batch = WordpieceBatch(
        strings=strings,
        input_ids=input_ids,
        attention_mask=attention_mask,
        lengths=lengths,
        token_type_ids=None,
    )
    return batch, offsets


def _echo(ids, offsets, special_masks):
    """Rows repeated as [specials + pieces] + [pieces]; the first copy gets
    zero-width offsets (it feeds no token)."""
    echo_ids, echo_offsets = [], []
    for row, offs, special in zip(ids, offsets, special_masks):
        pieces = [i for i, is_special in enumerate(special) if not is_special]
        echo_ids.append(list(row) + [row[i] for i in pieces])
        echo_offsets.append(numpy.concatenate([numpy.zeros_like(offs), offs[pieces]]))
    return echo_ids, echo_offsets


def count_truncated(spans: Sequence[Span], offsets: Sequence[numpy.ndarray]) -> int:
    """How many spans lost text to max_length (their pieces end before their text)."""
    return sum(int(o[:, 1].max(initial=0)) < len(span.text.rstrip()) for span, o in zip(spans, offsets))


def align_spans(spans: Sequence[Span], offsets: Sequence[numpy.ndarray], width: int) -> Ragged:
    """Alignment in spacy-transformers' layout: one row per token of every doc the
    spans come from (docs in order of first appearance), holding indices into the
    flattened (n_spans * width) piece array."""
    doc_base: Dict[int, int] = {}
    doc_arrays: Dict[int, numpy.ndarray] = {}
    n_tokens = 0
    for span in spans:
        key = id(span.doc)
        if key not in doc_base:
            doc_base[key] = n_tokens
            doc_arrays[key] = span.doc.to_array([IDX, LENGTH, IS_SPACE]).astype("int64")
            n_tokens += len(span.doc)
    token_parts, piece_parts = [], []
    for i, (span, offs) in enumerate(zip(spans, offsets)):
        arr = doc_arrays[id(span.doc)][span.start : span.end]
        tokens, pieces = _overlaps(arr, offs + span.start_char)
        token_parts.append(tokens + doc_base[id(span.doc)] + span.start)
        piece_parts.append(pieces + i * width)
    tokens = numpy.concatenate(token_parts) if token_parts else numpy.zeros(0, "int64")
    pieces = numpy.concatenate(piece_parts) if piece_parts else numpy.zeros(0, "int64")
    order = numpy.lexsort((pieces, tokens))
    lengths = numpy.bincount(tokens, minlength=n_tokens)
    return Ragged(pieces[order].astype("int32"), lengths.astype("int32"))


def _overlaps(token_arr: numpy.ndarray, char_offsets: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(token index, piece index) pairs where a piece overlaps a non-space token,
    plus the nearest-piece fallback for non-space tokens no piece overlaps."""
    starts, ends = token_arr[:, 0], token_arr[:, 0] + token_arr[:, 1]
    p_start, p_end = char_offsets[:, 0], char_offsets[:, 1]
    first = numpy.searchsorted(ends, p_start, side="right")
    last = numpy.searchsorted(starts, p_end, side="left")
    counts = numpy.where(p_end > p_start, numpy.maximum(last - first, 0), 0)
    pieces = numpy.repeat(numpy.arange(len(char_offsets)), counts)
    within = numpy.arange(counts.sum()) - numpy.repeat(numpy.cumsum(counts) - counts, counts)
    tokens = numpy.repeat(first, counts) + within
    keep = token_arr[tokens, 2] == 0
    tokens, pieces = tokens[keep], pieces[keep]
    fed = numpy.zeros(len(token_arr), dtype=bool)
    fed[tokens] = True
    orphans = numpy.flatnonzero(~fed & (token_arr[:, 2] == 0))
    real = numpy.flatnonzero(p_end > p_start)
    if len(orphans) and len(real):
        before = numpy.searchsorted(p_start[real], starts[orphans], side="right") - 1
        tokens = numpy.concatenate([tokens, orphans])
        pieces = numpy.concatenate([pieces, real[numpy.maximum(before, 0)]])
    return tokens, pieces


"""Tokenizers for the trainer: a byte-level BPE trained locally (``--tiny``) or a hub/local LM tokenizer, plus the
image tokens of the IDEFICS family (``<fake_token_around_image>``, ``<image>``, ``<global-img>``,
``<end_of_utterance>``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

FAKE_TOKEN = "<fake_token_around_image>"
IMAGE_TOKEN = "<image>"
GLOBAL_IMAGE_TOKEN = "<global-img>"
END_OF_UTTERANCE = "<end_of_utterance>"
IMAGE_TOKENS = (FAKE_TOKEN, IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN, END_OF_UTTERANCE)
#: Idefics3's tile-position tokens ``<row_r_col_c>`` (1-based, a grid of at most 6 x 6, as its processor expects)
MAX_GRID = 6
#: the image tokens each arch's layout uses (what ``--init-from`` makes sure a released tokenizer has)
ARCH_TOKENS = {"idefics": (FAKE_TOKEN, IMAGE_TOKEN), "idefics2": (FAKE_TOKEN, IMAGE_TOKEN, END_OF_UTTERANCE),
               "idefics3": (FAKE_TOKEN, IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN, END_OF_UTTERANCE)}
ROW_COL_TOKENS = tuple(f"<row_{r}_col_{c}>" for r in range(1, MAX_GRID + 1) for c in range(1, MAX_GRID + 1))
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"


@dataclass(frozen=True)
class TokenIds:
    """The ids the renderers and the packer need (plain ints, picklable into loader workers)."""
    pad: int
    bos: int
    eos: int
    image: int
    fake: int
    global_img: int
    end_of_utterance: int
    base_vocab: int  # vocabulary size before the image tokens were added (rows below it are "old")
    vocab_size: int  # len(tokenizer)
    row_col: tuple[int, ...] = ()       # ids of ROW_COL_TOKENS (Idefics3 tile positions), row-major
    newline: tuple[int, ...] = ()       # "\n" as the tokenizer encodes it alone (Idefics3: end of a tile row)
    double_newline: tuple[int, ...] = ()  # "\n\n" alone (Idefics3: before the global image; between texts)

    def tile(self, row: int, col: int) -> int:
        """Id of ``<row_{row}_col_{col}>`` (1-based)."""
        if not self.row_col:
            raise ValueError("this tokenizer has no <row_r_col_c> tokens (Idefics3 image splitting needs them)")
        return self.row_col[(row - 1) * MAX_GRID + (col - 1)]

    def to_dict(self) -> dict:
        return asdict(self)


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """Train a byte-level BPE on ``texts`` (offline, ~1 s) and wrap it as a ``PreTrainedTokenizerFast``
    with BOS/EOS/PAD/UNK and the image tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS, UNK],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((t for t in texts if t), trainer=trainer)
    # BOS first, as the Llama/Mistral tokenizers of the released IDEFICS models do when called with special tokens
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, tok.token_to_id(BOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK)
    return add_image_tokens(fast, row_col=True)


def add_image_tokens(tokenizer, row_col: bool = False, only: tuple[str, ...] | None = None):
    """Add the IDEFICS image tokens (``only`` these when given, e.g. what a released model's layout needs; plus
    Idefics3's ``<row_r_col_c>`` tokens when ``row_col``, and a pad token when the tokenizer has none); returns the
    tokenizer.  The vocabulary size before the addition is kept in ``tokenizer.init_kwargs['obelics_base_vocab']``."""
    from tokenizers import AddedToken

    base = tokenizer.init_kwargs.get("obelics_base_vocab")
    if base is None:
        base = len(tokenizer)
        tokenizer.init_kwargs["obelics_base_vocab"] = base
    wanted = (IMAGE_TOKENS if only is None else only) + (ROW_COL_TOKENS if row_col else ())
    missing = [t for t in wanted if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_tokens([AddedToken(PAD, special=True, normalized=False)], special_tokens=True)
        tokenizer.pad_token = PAD
    if tokenizer.bos_token is None:
        tokenizer.bos_token = tokenizer.eos_token or tokenizer.pad_token
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.bos_token
    return tokenizer


def token_ids(tokenizer) -> TokenIds:
    vocab = tokenizer.get_vocab()

    def ids(t: str) -> int:  # a token the arch does not use may be absent from a released tokenizer: -1
        return vocab.get(t, -1)

    row_col = tuple(vocab[t] for t in ROW_COL_TOKENS) if all(t in vocab for t in ROW_COL_TOKENS) else ()
    return TokenIds(pad=tokenizer.pad_token_id, bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id,
                    image=ids(IMAGE_TOKEN), fake=ids(FAKE_TOKEN), global_img=ids(GLOBAL_IMAGE_TOKEN),
                    end_of_utterance=ids(END_OF_UTTERANCE),
                    base_vocab=int(tokenizer.init_kwargs.get("obelics_base_vocab") or len(tokenizer)),
                    vocab_size=len(tokenizer), row_col=row_col,
                    newline=tuple(tokenizer.encode("\n", add_special_tokens=False)),
                    double_newline=tuple(tokenizer.encode("\n\n", add_special_tokens=False)))


def load_tokenizer(name_or_dir: str, row_col: bool = False):
    """A hub id or local folder -> tokenizer with the image tokens added (offline if HF_HUB_OFFLINE=1)."""
    from transformers import AutoTokenizer

    return add_image_tokens(AutoTokenizer.from_pretrained(name_or_dir), row_col=row_col)


def make_encoder(tokenizer):
    """A fast ``list[str] -> list[list[int]]`` batch encoder without special tokens (picklable)."""
    return _BatchEncoder(tokenizer)


class _BatchEncoder:
    def __init__(self, tokenizer):
        self.backend = tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else None
        self.tokenizer = tokenizer

    def __call__(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        if self.backend is not None:
            return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]
        return [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]

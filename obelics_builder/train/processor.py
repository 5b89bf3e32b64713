"""The transformers processor of a trained model (``IdeficsProcessor``, ``Idefics2Processor``, ``Idefics3Processor``):
built from our tokenizer and the arch's image processor, saved into every checkpoint's model folder (chat template
included) so that ``AutoProcessor.from_pretrained(ckpt)`` and the seeds' inference code work on it, and loaded back
for ``--init-from`` and ``generate``."""
from __future__ import annotations

from pathlib import Path

from .images import ImagePrep
from .render import ArchSpec

#: "User:<image>What is it?<end_of_utterance>\nAssistant: ..." -- the turn format of the IDEFICS chat models; message
#: contents are lists of {"type": "text", "text": ...} / {"type": "image"} parts (or plain strings).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}"
    "{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_processor(spec: ArchSpec, tokenizer, prep: ImagePrep, chat_template: str | None = CHAT_TEMPLATE):
    """The arch's processor over ``tokenizer`` and ``prep``'s image processor."""
    import transformers as tf

    if spec.arch == "idefics":
        proc = tf.IdeficsProcessor(image_processor=prep.ip, tokenizer=tokenizer, image_size=spec.image_size)
        # IdeficsProcessor does not take a chat template back from its folder: the tokenizer carries it too
        proc.chat_template = tokenizer.chat_template = chat_template
        return proc
    if spec.arch == "idefics2":
        return tf.Idefics2Processor(image_processor=prep.ip, tokenizer=tokenizer,
                                    image_seq_len=spec.tokens_per_image, chat_template=chat_template)
    if spec.arch == "idefics3":
        return tf.Idefics3Processor(image_processor=prep.ip, tokenizer=tokenizer,
                                    image_seq_len=spec.tokens_per_image, chat_template=chat_template)
    raise ValueError(f"unknown arch {spec.arch!r}")


def load_processor(path: str | Path):
    """``AutoProcessor.from_pretrained`` of a model folder or hub id (None when it holds no processor)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(path))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tokens_per_image(processor, default: int) -> int:
    """The processor's ``<image>`` tokens per crop (IDEFICS v1: one)."""
    return int(getattr(processor, "image_seq_len", default) or default)

"""Tiny random vision-language model folders, laid out as each family's Hub snapshot is.

Each `build_*_folder(path)` builds a model of that family from its config with random weights
(hidden sizes 32-64, one or two layers, 28-64 px images: a CPU forward takes milliseconds), and
saves it with `save_pretrained` beside its processor: image processor, tokenizer (a BPE trained
here on phantom report sentences, with the family's special tokens) and chat template. The
folders load with `AutoProcessor` / `AutoModelForImageTextToText.from_pretrained(folder,
local_files_only=True)` as a downloaded MedGemma (Gemma3), Lingshu (Qwen2.5-VL), RadVLM
(Qwen3-VL) or llava-hf model does; nothing is downloaded.

The chat templates are written here: each renders the turn markup its family's template
renders (roles, turn tokens, image placeholders), not the original Jinja text.

`build_remote_code_folder(path, family)` writes a folder whose config.json `auto_map` names
Python files of the folder, as MAIRA-2's and CheXagent-2's snapshots do; importing those files
writes `EXECUTED` into the folder, so a test can tell whether the code ran.

Builders are deterministic: the same seed gives the same weights.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import trainers
from tokenizers.pre_tokenizers import ByteLevel
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

PHANTOM_SENTENCES = (
    "FINDINGS: Heart size is normal. Lungs are clear.",
    "IMPRESSION: No acute cardiopulmonary process.",
    "Endotracheal tube tip 4 cm above the carina.",
    "Nasogastric tube courses below the diaphragm.",
    "Right internal jugular central venous catheter tip in the superior vena cava.",
    "Small left pleural effusion. No pneumothorax.",
    "Worsening right lower lobe consolidation.",
    "Improving pulmonary edema. Stable cardiomegaly.",
    "Describe the findings of this chest X-ray. Indication: cough and fever.",
    "Prior report: mild bibasilar atelectasis. Compare with the prior study.",
)

VOCAB_SIZE = 600
SEED = 0

# The text every family's tokenizer must encode without unknown tokens: reports are ASCII.
_ALPHABET = list(string.ascii_letters + string.digits + string.punctuation + " \n")


def _trained_vocabulary(
    tokenizer: PreTrainedTokenizerBase, special: list[str], byte_level: bool
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges of a BPE trained on PHANTOM_SENTENCES through `tokenizer`'s own
    normalizer and pre-tokenizer, so that the family's tokenizer class can be built from them."""
    backend = tokenizer.backend_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=special,
        initial_alphabet=ByteLevel.alphabet() if byte_level else _ALPHABET,
        show_progress=False,
    )
    backend.train_from_iterator(list(PHANTOM_SENTENCES) * 4, trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges  # type: ignore[return-value]


def _add_special(tokenizer: PreTrainedTokenizerBase, tokens: list[str]) -> dict[str, int]:
    """Adds `tokens` as special tokens (never split) and returns their ids."""
    tokenizer.add_tokens(tokens, special_tokens=True)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tokens}
    unknown = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if unknown:
        raise RuntimeError(f"special tokens not in the vocabulary: {unknown}")
    return ids


def _save(
    folder: Path,
    model: PreTrainedModel,
    processor: Any,
    generation: dict[str, Any],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(**generation)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# --- Gemma3 (MedGemma) -------------------------------------------------------------------------

GEMMA3_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] if messages[0]['content'] is string "
    "else messages[0]['content'][0]['text'] -%}"
    "{%- set messages = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<start_of_turn>' + role + '\\n' -}}"
    "{%- if loop.first and system -%}{{- system + '\\n\\n' -}}{%- endif -%}"
    "{%- if message['content'] is string -%}{{- message['content'] | trim -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{- '<start_of_image>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] | trim -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)


def build_gemma3_folder(path: Path, seed: int = SEED) -> Path:
    """A tiny Gemma3ForConditionalGeneration + Gemma3Processor folder, as MedGemma's snapshot
    (28 px images of 16 SigLIP patches, pooled to 4 image tokens; 1 text layer)."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        GemmaTokenizer,
    )

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab, merges = _trained_vocabulary(GemmaTokenizer(), specials, byte_level=False)
    image_tokens = {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, extra_special_tokens=image_tokens)
    ids = _add_special(tokenizer, [*image_tokens.values(), "<start_of_turn>", "<end_of_turn>"])
    image_size, patch_size, mm_tokens = 28, 7, 4
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(
            size={"height": image_size, "width": image_size},
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        ),
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        image_seq_length=mm_tokens,
    )
    config = Gemma3Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "sliding_window": 64,
            "max_position_embeddings": 1024,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        mm_tokens_per_image=mm_tokens,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    stop = [tokenizer.eos_token_id, ids["<end_of_turn>"]]
    generation = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": stop,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return _save(path, model, processor, generation)


# --- Qwen2.5-VL (Lingshu) and Qwen3-VL (RadVLM) ------------------------------------------------

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def _qwen_chat_template(default_system: str | None) -> str:
    system = (
        "{%- if messages[0]['role'] != 'system' -%}"
        f"{{{{- '<|im_start|>system\\n{default_system}<|im_end|>\\n' -}}}}"
        "{%- endif -%}"
        if default_system
        else ""
    )
    return (
        system + "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- else -%}{%- for item in message['content'] -%}"
        "{%- if item['type'] == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
        "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{- '<|im_end|>\\n' -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


QWEN2_5_VL_CHAT_TEMPLATE = _qwen_chat_template("You are a helpful assistant.")
QWEN3_VL_CHAT_TEMPLATE = _qwen_chat_template(None)


def _qwen_tokenizer() -> tuple[PreTrainedTokenizerBase, dict[str, int]]:
    from transformers import Qwen2Tokenizer

    vocab, merges = _trained_vocabulary(Qwen2Tokenizer(), ["<|endoftext|>"], byte_level=True)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    ids = _add_special(tokenizer, QWEN_SPECIAL_TOKENS)
    return tokenizer, ids


def _qwen_token_ids(ids: dict[str, int]) -> dict[str, int]:
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def _qwen_generation(tokenizer: PreTrainedTokenizerBase, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": tokenizer.pad_token_id,
    }


def build_qwen2_5_vl_folder(path: Path, seed: int = SEED) -> Path:
    """A tiny Qwen2_5_VLForConditionalGeneration + Qwen2_5_VLProcessor folder, as Lingshu's
    snapshot (images resized to 56 x 56 px: 16 patches of 14 px merged into 4 tokens)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer, ids = _qwen_tokenizer()
    pixels = 56 * 56
    size = {"shortest_edge": pixels, "longest_edge": pixels}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, patch_size=14, merge_size=2),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=size, patch_size=14, merge_size=2),
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
            },
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [0],
            "out_hidden_size": 64,
        },
        **_qwen_token_ids(ids),
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    return _save(path, model, processor, _qwen_generation(tokenizer, ids))


def build_qwen3_vl_folder(path: Path, seed: int = SEED) -> Path:
    """A tiny Qwen3VLForConditionalGeneration + Qwen3VLProcessor folder, as RadVLM's snapshot
    (images resized to 64 x 64 px: 16 patches of 16 px merged into 4 tokens)."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer, ids = _qwen_tokenizer()
    pixels = 64 * 64
    size = {"shortest_edge": pixels, "longest_edge": pixels}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            size=size,
            patch_size=16,
            merge_size=2,
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        ),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(size=size, patch_size=16, merge_size=2),
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 1024,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 16,
            "deepstack_visual_indexes": [0],
        },
        **_qwen_token_ids(ids),
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    return _save(path, model, processor, _qwen_generation(tokenizer, ids))


# --- LLaVA (llava-hf format) -------------------------------------------------------------------

LLAVA_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{- message['content'][0]['text'] + ' ' -}}"
    "{%- else -%}"
    "{{- message['role'].upper() + ': ' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{- '<image>\\n' -}}{%- endif -%}"
    "{%- endfor -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'text' -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{{- eos_token -}}{%- endif -%}"
    "{{- ' ' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)


def build_llava_folder(path: Path, seed: int = SEED) -> Path:
    """A tiny LlavaForConditionalGeneration + LlavaProcessor folder in llava-hf's format
    (CLIP vision tower on 28 px crops: 4 patch tokens per image; Llama text model)."""
    from transformers import (
        CLIPImageProcessor,
        LlamaTokenizer,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    specials = ["<unk>", "<s>", "</s>"]
    vocab, merges = _trained_vocabulary(LlamaTokenizer(), specials, byte_level=False)
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<pad>")
    ids = _add_special(tokenizer, ["<image>", "<pad>"])
    image_size, patch_size = 28, 14
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
        ),
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,  # CLIP's class token
    )
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
            "projection_dim": 32,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
            "pad_token_id": ids["<pad>"],
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        image_token_index=ids["<image>"],
        image_seq_length=(image_size // patch_size) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    generation = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": ids["<pad>"],
    }
    return _save(path, model, processor, generation)


# --- custom code (MAIRA-2, CheXagent-2 stand-ins) ----------------------------------------------

EXECUTED = "EXECUTED"

# family -> (model_type, architecture, {auto class: module.Class}), as their config.json have.
REMOTE_CODE_FAMILIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "maira2": (
        "maira2",
        "Maira2ForConditionalGeneration",
        {
            "AutoConfig": "configuration_maira2.Maira2Config",
            "AutoModelForCausalLM": "modeling_maira2.Maira2ForConditionalGeneration",
            "AutoProcessor": "processing_maira2.Maira2Processor",
        },
    ),
    "chexagent": (
        "chexagent",
        "CheXagentForCausalLM",
        {
            "AutoConfig": "configuration_chexagent.CheXagentConfig",
            "AutoModelForCausalLM": "modeling_chexagent.CheXagentForCausalLM",
        },
    ),
}


def _tripwire(folder: Path) -> str:
    # The folder's path is written in: transformers runs a copy of the file from its modules
    # cache, not the file in the folder.
    mark = str((folder / EXECUTED).resolve())
    return (
        '"""Stands in for a model\'s own code: importing it leaves a mark, nothing else."""\n'
        "from pathlib import Path\n\n"
        f"Path({mark!r}).write_text(__name__)\n"
    )


def build_remote_code_folder(path: Path, family: str = "maira2") -> Path:
    """A folder whose config.json `auto_map` points at Python files in the folder, as the
    snapshots of MAIRA-2 (`maira2`) and CheXagent-2 (`chexagent`) do. The files only write
    `EXECUTED` into the folder when imported: the folder cannot generate anything."""
    model_type, architecture, auto_map = REMOTE_CODE_FAMILIES[family]
    path.mkdir(parents=True, exist_ok=True)
    config = {"model_type": model_type, "architectures": [architecture], "auto_map": auto_map}
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for reference in auto_map.values():
        (path / f"{reference.split('.')[0]}.py").write_text(_tripwire(path))
    return path


MAIRA2_CALLS = "maira2_calls.jsonl"  # what the MAIRA-2 stand-in's processor was given

_MAIRA2_CODE = {
    "configuration_maira2.py": (
        "from transformers import LlavaConfig\n\n\n"
        "class Maira2Config(LlavaConfig):\n"
        '    model_type = "maira2"\n'
    ),
    "modeling_maira2.py": (
        "from transformers import LlavaForConditionalGeneration\n\n"
        "from .configuration_maira2 import Maira2Config\n\n\n"
        "class Maira2ForConditionalGeneration(LlavaForConditionalGeneration):\n"
        "    config_class = Maira2Config\n"
    ),
    "processing_maira2.py": """import json

from transformers import LlavaProcessor

CALLS = {calls!r}


class Maira2Processor(LlavaProcessor):
    def format_and_preprocess_reporting_input(
        self, current_frontal, current_lateral, prior_frontal, indication, technique,
        comparison, prior_report, return_tensors="pt", get_grounding=False,
    ):
        images = [i for i in (current_frontal, current_lateral, prior_frontal) if i is not None]
        texts = {{"indication": indication, "technique": technique, "comparison": comparison,
                 "prior_report": prior_report}}
        with open(CALLS, "a", encoding="utf-8") as handle:
            record = {{"images": len(images), "lateral": current_lateral is not None,
                      "prior_frontal": prior_frontal is not None, **texts,
                      "get_grounding": get_grounding}}
            handle.write(json.dumps(record) + "\\n")
        words = " ".join(f"{{k.upper()}}: {{v}}" for k, v in texts.items() if v)
        prompt = self.image_token * len(images) + " Findings. " + words
        return self(images=images, text=prompt, return_tensors=return_tensors)

    def convert_output_to_plaintext_or_grounded_sequence(self, text):
        return text.strip()
""",
}


def build_maira2_standin_folder(path: Path) -> Path:
    """A custom-code folder with MAIRA-2's documented interface: a tiny LLaVA under
    `maira2` classes of the folder's own code (config, model for AutoModelForCausalLM, and a
    processor with `format_and_preprocess_reporting_input` and
    `convert_output_to_plaintext_or_grounded_sequence`). MAIRA-2's real code is not
    available here; this stands in for it so that cxr's MAIRA-2 backend runs end to end.
    Each processor call is appended to MAIRA2_CALLS in the folder."""
    model_type, architecture, auto_map = REMOTE_CODE_FAMILIES["maira2"]
    build_llava_folder(path)
    config = json.loads((path / "config.json").read_text())
    config |= {"model_type": model_type, "architectures": [architecture], "auto_map": auto_map}
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    processor = json.loads((path / "processor_config.json").read_text())
    processor |= {
        "processor_class": "Maira2Processor",
        "auto_map": {"AutoProcessor": auto_map["AutoProcessor"]},
    }
    (path / "processor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    calls = str((path / MAIRA2_CALLS).resolve())
    for name, code in _MAIRA2_CODE.items():
        (path / name).write_text(code.format(calls=calls) if "{calls" in code else code)
    return path


# name -> builder, for tests and benchmarks that go over every family.
FAMILY_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "gemma3": build_gemma3_folder,
    "qwen2_5_vl": build_qwen2_5_vl_folder,
    "qwen3_vl": build_qwen3_vl_folder,
    "llava": build_llava_folder,
}

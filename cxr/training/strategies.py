"""Distributed training strategies that know the report model's structure.

`DecoderLayerFSDP` is Lightning's `FSDPStrategy` with the wrapping chosen from the model
itself: every decoder layer of the text decoder's Hugging Face language model becomes its own
FSDP unit (the layer classes that model lists in `_no_split_modules`, e.g. `LlamaDecoderLayer`,
`GPT2Block`, `Gemma3DecoderLayer`), and, with `activation_checkpointing`, each of those layers
recomputes its activations in the backward pass. A YAML names the strategy without naming the
layer class, which changes with the decoder (configs/trainer/fsdp.yaml):

    strategy:
      class_path: cxr.training.strategies.DecoderLayerFSDP
      init_args: {activation_checkpointing: true, state_dict_type: sharded}

The image encoder, connector and heads stay in the root unit: they are small beside a
language model. Every other `FSDPStrategy` argument passes through.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

log = logging.getLogger(__name__)


def decoder_layer_classes(model: nn.Module) -> set[type[nn.Module]]:
    """The module classes of `model` that its Hugging Face language models name as layers
    never to split (`_no_split_modules`): one per decoder layer."""
    names = {
        name
        for module in model.modules()
        for name in (getattr(module, "_no_split_modules", None) or [])
    }
    return {type(module) for module in model.modules() if type(module).__name__ in names}


class DecoderLayerFSDP(FSDPStrategy):
    """FSDP with one unit per decoder layer and, optionally, activation checkpointing of those
    layers (see the module docstring).

    Args:
        activation_checkpointing: Recompute each decoder layer's activations in backward.
        **kwargs: Lightning's FSDPStrategy arguments (sharding_strategy, state_dict_type,
            cpu_offload, ...), except the wrapping and checkpointing policies chosen here.
    """

    strategy_name = "fsdp_decoder_layers"

    def __init__(self, activation_checkpointing: bool = False, **kwargs: Any) -> None:
        for chosen in ("auto_wrap_policy", "activation_checkpointing_policy"):
            if kwargs.pop(chosen, None) is not None:
                raise ValueError(
                    f"DecoderLayerFSDP chooses {chosen} from the model; use FSDPStrategy to set it"
                )
        super().__init__(**kwargs)
        self._checkpoint_layers = activation_checkpointing

    def _setup_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        classes = decoder_layer_classes(model)
        if not classes:
            raise ValueError(
                "DecoderLayerFSDP: the model has no Hugging Face decoder layers to wrap "
                "(no `_no_split_modules`); use strategy fsdp with an auto_wrap_policy"
            )
        names = sorted(cls.__name__ for cls in classes)
        log.info("FSDP units: %s; activation checkpointing: %s", names, self._checkpoint_layers)
        self.kwargs["auto_wrap_policy"] = ModuleWrapPolicy(classes)
        if self._checkpoint_layers:
            layers = tuple(classes)
            self._activation_checkpointing_kwargs = {
                "check_fn": lambda module: isinstance(module, layers)
            }
        return super()._setup_model(model)

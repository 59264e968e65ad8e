"""Width-parametrized model families by name, each holding S fused copies (one per seed).

    model = create_model("resnet18k", width=8, in_shape=(3, 32, 32), num_classes=10, copies=2)
    logits = model(x)  # x [S or 1, B, 3, 32, 32] -> [S, B, 10]

Importing the family modules registers them.
"""

from ddsweep.models import cnn1d, convnets, mlp, resnet, vit  # noqa: F401  (register the families)
from ddsweep.models.base import count_params, init_parameters, stack_state_dicts, unstack_state_dict
from ddsweep.models.layers import ACTIVATIONS
from ddsweep.models.registry import create_model, list_models, model_options, model_skeleton, register_model

__all__ = [
    "ACTIVATIONS", "count_params", "create_model", "init_parameters", "list_models", "model_options",
    "model_skeleton", "register_model", "stack_state_dicts", "unstack_state_dict",
]

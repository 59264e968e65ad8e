"""Pure measurement functions: tensors in, tensors or numbers out.

No I/O, no plotting, no Lightning; randomness only from an explicit ``torch.Generator``.
Models are seen through a ``logits_fn(x [N, *in_shape]) -> logits [S, N, C]`` (see
``evaluate.as_logits_fn``), where S is the number of seeds trained together.
"""

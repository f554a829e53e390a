"""The operators of a CNN, forward and backward, on PyTorch tensors."""

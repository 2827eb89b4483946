"""PyTorch backend (channels-first nn.Modules with Keras semantics)."""

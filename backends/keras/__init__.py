"""Keras 3 backend (TensorFlow, channels-last)."""

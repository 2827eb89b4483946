"""The ONNX backend: the IR written straight to an ONNX model (generator.py)."""

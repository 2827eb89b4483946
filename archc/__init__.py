"""archc: a declarative CNN architecture-spec compiler.

from archc.pipeline import compile_spec
model = compile_spec("specs/vgg16.cnn")   # inferred IR (archc.ir.Model)
"""

__version__ = "0.1.0"

"""The IR: an immutable, typed graph of layer nodes, framework-free and text-free.

- archc/ir/kinds.py  every layer kind: its fields and its rules (shape, parameters,
                     MACs, receptive field, weights), one class each, in `KINDS`;
- archc/ir/model.py  the graph (`Model`) and block structure;
- archc/ir/shapes.py shape arithmetic shared by the kinds.

It imports neither lark nor archc.language (a test checks it).
"""

from archc.ir.kinds import KINDS, RF, Loc, Node
from archc.ir.model import BlockDefinition, BlockInstance, BlockParam, Model

__all__ = ["KINDS", "RF", "BlockDefinition", "BlockInstance", "BlockParam", "Loc", "Model", "Node"]

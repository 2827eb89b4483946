"""Source emission scales with the model (found by benchmarks/fuzz_long.py): a
model of thousands of block instances is emitted in seconds, not minutes
(an instance's arguments were looked up with `list.index`, comparing deep
dataclasses one by one: quadratic)."""

from __future__ import annotations

import time

import pytest

from backends import get
from tests.helpers import compile_str

MANY = (
    'include "stdlib.cnn"\ninput 32*32*3\nConvBNRelu(16)\n'
    + "InceptionBlk(16) " * 400
    + "\nGAP Dense(10, softmax)\n"
)


@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_thousands_of_block_instances_are_emitted_in_seconds(backend):
    model = compile_str(MANY)
    assert len(model.blocks) > 2000
    t = time.process_time()
    source = get(backend).generate(model)
    compile(source, f"<{backend}>", "exec")
    assert time.process_time() - t < 10

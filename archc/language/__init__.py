"""The .cnn language: grammar, parser, syntax tree, expression evaluation, and the
binding of each layer call's arguments to an IR kind's fields (archc/language/bind.py).

Everything here is about text; the IR (archc/ir/) never imports it.
"""

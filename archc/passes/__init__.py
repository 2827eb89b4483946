"""The passes between the syntax tree and the inferred IR (archc/pipeline.py runs them):
`expand` (blocks, branches, repeats -> an IR graph) and `infer` (shapes, counts, MACs,
receptive fields, from each kind's own rules)."""

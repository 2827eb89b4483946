"""The spec language: from text to what the spec says (syntax, values, binding)."""

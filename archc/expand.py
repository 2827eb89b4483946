"""Syntax tree -> IR graph: resolve includes and names, expand blocks, branches,
conditions and repetitions into a flat, topologically ordered list of nodes.

Two walks over the syntax tree:

1. `count`: how many nodes the spec expands to, computed arithmetically (a
   repeat multiplies, a block call is counted once per distinct argument list),
   so `x(1000000000)` is refused in microseconds, not after filling memory.
   It also finds recursive blocks and over-deep block calls.
2. `expand`: builds the nodes, names them in the seeds' style (`c1 b1 a1 p1 d1`,
   `resnet_block2.c1`) and records every block instance.
"""

from __future__ import annotations

import builtins
import keyword
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from archc import syntax as S
from archc.diagnostics import Diagnostics, SpecError, did_you_mean
from archc.ir import BlockDefinition, BlockInstance, BlockParam, Model
from archc.layers import SPELLINGS, Add, Concat, Input, Loc, Node
from archc.limits import LIMITS
from archc.parser import parse, read_source
from archc.training import build_training
from archc.values import ArgReader, Evaluator, FuncVal, Sym, Tagged, show

# Words of the language itself, and names a generated module needs for itself.
RESERVED = {"model", "include", "input", "Input", "block", "train", "concat", "add", "if",
            "else", "as", "identity", "x", "self", "super", "keras", "layers", "ops", "nn",
            "torch", "tf", "F", "np", "math", "Model", "Module", "name", "inputs",
            "in_channels", "optimizer", "scheduler", "schedule", "model"}
SHORTHAND = re.compile(r"^[spx][0-9]+$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BARE_FIRST = {"flatten", "input"}


def identifier_problem(name: str) -> str | None:
    """Why `name` cannot become a Python identifier in generated code, or None."""
    if not IDENT.match(name):
        return "names are ASCII letters, digits and `_`, not starting with a digit"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"`{name}` is a Python keyword"
    if name.startswith("__") and name.endswith("__"):
        return "names with double underscores on both sides are reserved"
    if name in dir(builtins):
        return f"`{name}` would shadow the Python builtin of that name"
    if name in RESERVED or SHORTHAND.match(name):
        return f"`{name}` is a word of the .cnn language"
    if name in SPELLINGS:
        return f"`{name}` is the name of a layer kind"
    return None


def snake(name: str) -> str:
    """ConvBNRelu -> conv_bn_relu, InceptionBlk -> inception_blk."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def loc(span: S.Span) -> Loc:
    return Loc(file=span.file, line=span.line, col=span.col)


def arg_value(v: Any) -> Any:
    """Evaluated value -> JSON-friendly IR value."""
    if isinstance(v, Sym):
        return v.name
    if isinstance(v, (Tagged, FuncVal)):
        return show(v)
    if isinstance(v, tuple):
        return [arg_value(x) for x in v]
    return v


# ---------------------------------------------------------------------------
# Loading: the main file and everything it includes
# ---------------------------------------------------------------------------


@dataclass
class Program:
    main: S.SpecFile
    blocks: dict[str, S.BlockDef] = field(default_factory=dict)


def load(path: str, diags: Diagnostics, text: str | None = None) -> Program:
    if text is None:
        text = read_source(path, diags)
    main = parse(text, path, diags)
    if not text.strip() or (not main.body and not main.inputs and not main.blocks
                            and not main.includes and main.model is None):
        span = S.Span(path, 1, 1, 1, 2)
        raise diags.fatal("E003", f"`{path}` is empty", span,
                          expected="`input H*W*C` followed by layers",
                          hint="for example:  input 32*32*3  C(6*5*5, s1, same) B A(relu)")
    program = Program(main)
    seen = {os.path.realpath(path)}
    queue = [main]
    while queue:
        spec = queue.pop(0)
        for b in spec.blocks:
            _define_block(program, b, diags)
        for inc in spec.includes:
            base = os.path.dirname(spec.path)
            target = os.path.normpath(os.path.join(base, inc.path))
            real = os.path.realpath(target)
            if real in seen:
                continue  # included twice (or a cycle): once is enough
            seen.add(real)
            if len(seen) > LIMITS.max_includes:
                raise diags.fatal("E504", f"more than {LIMITS.max_includes} files included",
                                  inc.span)
            if not os.path.isfile(target):
                diags.error("E001", f"cannot include `{inc.path}`: no such file", inc.span,
                            hint=f"include paths are relative to `{base or '.'}`")
                continue
            sub = parse(read_source(target, diags), target, diags)
            for what, items in (("input", sub.inputs), ("layers", sub.body),
                                ("train", sub.trains)):
                if items:
                    first = items[0]
                    diags.error("E207", f"an included file may define only blocks, but "
                                f"`{inc.path}` has {what}", getattr(first, "span", inc.span),
                                hint="move the network itself into the spec that includes it")
            queue.append(sub)
    return program


def _define_block(program: Program, b: S.BlockDef, diags: Diagnostics) -> None:
    problem = identifier_problem(b.name)
    if problem:
        # Reported once here; the block is still defined so that its calls do not
        # each report an unknown name as well.
        diags.error("E202", f"`{b.name}` cannot name a block", b.name_span, hint=problem)
        if b.name in SPELLINGS:
            return
    if b.name in program.blocks:
        first = program.blocks[b.name].span
        diags.error("E205", f"block `{b.name}` is defined twice", b.name_span,
                    notes=(f"first defined at {first}",), hint="rename one of them")
        return
    names = set()
    for p in b.params:
        problem = identifier_problem(p.name)
        if problem:
            diags.error("E202", f"`{p.name}` cannot name a parameter", p.span, hint=problem)
        elif p.name in names:
            diags.error("E206", f"parameter `{p.name}` appears twice", p.span)
        names.add(p.name)
    seen_default = False
    for p in b.params:
        if p.default is not None:
            seen_default = True
        elif seen_default:
            diags.error("E303", f"parameter `{p.name}` without a default follows one with a "
                        "default", p.span, hint="put parameters with defaults last")
    program.blocks[b.name] = b


# ---------------------------------------------------------------------------
# Expansion
# ---------------------------------------------------------------------------


@dataclass
class _Scope:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    used: set[str] = field(default_factory=set)


class Expander:
    def __init__(self, program: Program, diags: Diagnostics):
        self.program = program
        self.blocks = program.blocks
        self.diags = diags
        self.nodes: list[Node] = []
        self.instances: list[BlockInstance] = []
        self.scopes: dict[str, _Scope] = defaultdict(_Scope)
        self._count_memo: dict[tuple, int] = {}

    # -- block arguments (shared by both walks)
    def bind_block(self, call: S.Call, ev: Evaluator) -> dict[str, Any]:
        b = self.blocks[call.name]
        env: dict[str, Any] = {}
        params = {p.name: p for p in b.params}
        pos = [a for a in call.args if isinstance(a, S.PosArg)]
        if len(pos) > len(b.params):
            raise self.diags.fatal(
                "E303", f"block `{b.name}` takes {len(b.params)} argument(s), "
                f"{len(pos)} given", pos[len(b.params)].span,
                expected=f"{b.name}({', '.join(p.name for p in b.params)})")
        for p, a in zip(b.params, pos):
            env[p.name] = ev.eval(a.value)
        for a in call.args:
            if isinstance(a, S.Footnote):
                continue
            if isinstance(a, S.KwArg):
                if a.key not in params:
                    suggestion = did_you_mean(a.key, params)
                    raise self.diags.fatal(
                        "E302", f"block `{b.name}` has no parameter `{a.key}`", a.span,
                        expected=", ".join(params) or "no parameters",
                        hint=f"did you mean `{suggestion}`?" if suggestion else None)
                if a.key in env:
                    raise self.diags.fatal("E306", f"parameter `{a.key}` is given twice", a.span)
                env[a.key] = ev.eval(a.value)
        inner = Evaluator(env, self.diags)
        for p in b.params:
            if p.name not in env:
                if p.default is None:
                    raise self.diags.fatal(
                        "E303", f"block `{b.name}` needs parameter `{p.name}`", call.span,
                        expected=f"{b.name}({', '.join(q.name for q in b.params)})")
                env[p.name] = inner.eval(p.default)
        return env

    def _repeat(self, e: S.Element, ev: Evaluator) -> int:
        if e.repeat is None:
            return 1
        n = ev.eval(e.repeat)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise self.diags.fatal("E304", "a repeat count must be a positive integer",
                                   e.repeat.span, received=show(n))
        return n

    def _test(self, c: S.Cond, ev: Evaluator) -> bool:
        v = ev.eval(c.test)
        if isinstance(v, Sym) and v.name in ("Yes", "yes", "True", "true"):
            return True
        if isinstance(v, Sym) and v.name in ("No", "no", "None", "False", "false"):
            return False
        if isinstance(v, int) and not isinstance(v, bool):
            return v != 0
        raise self.diags.fatal("E304", "an `if` needs an integer condition", c.test.span,
                               received=show(v), hint="compare with `==`, `<`, ... or use 0/1")

    # -- walk 1: counting
    def count_seq(self, seq: S.Seq | list[S.Element], ev: Evaluator, stack: tuple[str, ...]) -> int:
        elements = seq.elements if isinstance(seq, S.Seq) else seq
        total = 0
        for e in elements:
            n = self._count_unit(e.unit, ev, stack) * self._repeat(e, ev)
            if n > LIMITS.max_nodes:
                raise self.diags.fatal(
                    "E501", f"this expands to {n:,} nodes, more than archc's limit of "
                    f"{LIMITS.max_nodes:,}", e.span,
                    hint="check the repeat counts; no real network is this large")
            total += n
        if total > LIMITS.max_nodes:
            raise self.diags.fatal("E501", f"the spec expands to {total:,} nodes, more than "
                                   f"archc's limit of {LIMITS.max_nodes:,}",
                                   elements[-1].span if elements else None)
        return total

    def _count_unit(self, u, ev: Evaluator, stack: tuple[str, ...]) -> int:
        if isinstance(u, S.Call):
            if u.name not in self.blocks:
                return 2  # a layer call makes at most two nodes (Dense + Dropout)
            if u.name in stack:
                chain = " -> ".join(stack[stack.index(u.name):] + (u.name,))
                raise self.diags.fatal("E204", f"block `{u.name}` calls itself ({chain})",
                                       u.name_span, hint="blocks cannot be recursive; "
                                       "use a repeat `xN` instead")
            if len(stack) >= LIMITS.max_nesting:
                raise self.diags.fatal("E503", f"blocks call each other more than "
                                       f"{LIMITS.max_nesting} deep", u.span)
            env = self.bind_block(u, ev)
            key = (u.name, tuple(sorted((k, _hashable(v)) for k, v in env.items())))
            if key not in self._count_memo:
                body = self.blocks[u.name].body
                self._count_memo[key] = self.count_seq(body, Evaluator(env, self.diags),
                                                       stack + (u.name,))
            return self._count_memo[key]
        if isinstance(u, S.Group):
            return self.count_seq(u.body, ev, stack)
        if isinstance(u, S.Branch):
            return 1 + sum(self.count_seq(b, ev, stack) for b in u.branches)
        if isinstance(u, S.Cond):
            chosen = u.then if self._test(u, ev) else u.orelse
            return self.count_seq(chosen, ev, stack) if chosen is not None else 0
        raise AssertionError(u)

    # -- walk 2: expansion
    def fresh(self, scope: str, prefix: str) -> str:
        st = self.scopes[scope]
        while True:
            st.counts[prefix] += 1
            n = st.counts[prefix]
            local = prefix if (prefix in BARE_FIRST and n == 1) else f"{prefix}{n}"
            if local not in st.used:
                break
        st.used.add(local)
        return f"{scope}.{local}" if scope else local

    def claim(self, scope: str, local: str, span: S.Span) -> str | None:
        problem = identifier_problem(local)
        if problem:
            self.diags.error("E202", f"`{local}` cannot name a layer or block", span, hint=problem)
            return None
        st = self.scopes[scope]
        if local in st.used:
            self.diags.error("E206", f"the name `{local}` is already used here", span,
                             hint="names must be unique within a block")
            return None
        st.used.add(local)
        return f"{scope}.{local}" if scope else local

    def expand_seq(self, seq: S.Seq | list[S.Element], ev: Evaluator, scope: str, x: str) -> str:
        elements = seq.elements if isinstance(seq, S.Seq) else seq
        for e in elements:
            reps = self._repeat(e, ev)
            for i in range(reps):
                alias = e.alias
                if alias is not None and reps > 1:
                    alias = f"{alias}_{i + 1}"
                x = self._expand_unit(e, e.unit, ev, scope, x, alias)
        return x

    def _expand_unit(self, e: S.Element, u, ev: Evaluator, scope: str, x: str,
                     alias: str | None) -> str:
        if isinstance(u, S.Call):
            if u.name in self.blocks:
                return self._expand_block(e, u, ev, scope, x, alias)
            if u.name.lower() == "identity" and not u.args:
                return x
            cls = SPELLINGS.get(u.name)
            if cls is None:
                suggestion = did_you_mean(u.name, list(SPELLINGS) + list(self.blocks))
                self.diags.error(
                    "E201", f"unknown layer or block `{u.name}`", u.name_span,
                    expected="a layer (C, B, A, P, D, Flatten, Dense, GAP, LRN, ZeroPad) or a "
                    "block defined with `block`",
                    hint=f"did you mean `{suggestion}`?" if suggestion else
                    "define it with `block Name(params) { ... }` or `include` the file that does")
                return x
            specs = cls.bind(ArgReader(u, ev, cls.title, cls.options), u.name)
            for i, (kind_cls, fields) in enumerate(specs):
                name = None
                if alias is not None and i == 0:
                    name = self.claim(scope, alias, e.alias_span or u.span)
                if name is None:
                    name = self.fresh(scope, kind_cls.prefix)
                self.nodes.append(kind_cls(name=name, inputs=(x,), scope=scope, loc=loc(u.span),
                                           **fields))
                x = name
            return x
        if isinstance(u, S.Group):
            if alias is None:
                return self.expand_seq(u.body, ev, scope, x)
            path = self.claim(scope, alias, e.alias_span or u.span)
            if path is None:
                return self.expand_seq(u.body, ev, scope, x)
            self.instances.append(BlockInstance(path=path, block="", args={}, loc=loc(u.span)))
            return self.expand_seq(u.body, ev, path, x)
        if isinstance(u, S.Branch):
            outs = [self.expand_seq(b, ev, scope, x) for b in u.branches]
            cls = MERGES[u.merge]
            name = None
            if alias is not None:
                name = self.claim(scope, alias, e.alias_span or u.span)
            name = name or self.fresh(scope, cls.prefix)
            self.nodes.append(cls(name=name, inputs=tuple(outs), scope=scope, loc=loc(u.span)))
            return name
        if isinstance(u, S.Cond):
            chosen = u.then if self._test(u, ev) else u.orelse
            return self.expand_seq(chosen, ev, scope, x) if chosen is not None else x
        raise AssertionError(u)

    def _expand_block(self, e: S.Element, u: S.Call, ev: Evaluator, scope: str, x: str,
                      alias: str | None) -> str:
        env = self.bind_block(u, ev)
        path = None
        if alias is not None:
            path = self.claim(scope, alias, e.alias_span or u.span)
        path = path or self.fresh(scope, snake(u.name))
        self.instances.append(BlockInstance(
            path=path, block=u.name, args={k: arg_value(v) for k, v in env.items()},
            loc=loc(u.span)))
        return self.expand_seq(self.blocks[u.name].body, Evaluator(env, self.diags), path, x)


def check_library(program: Program, diags: Diagnostics) -> list[str]:
    """A file that only defines blocks: check that every name its blocks call is a
    layer kind or a block. Returns the block names."""
    stack: list[S.Seq] = [b.body for b in program.blocks.values()]
    while stack:
        seq = stack.pop()
        for e in seq.elements:
            u = e.unit
            if isinstance(u, S.Call):
                known = (u.name in SPELLINGS or u.name in program.blocks
                         or (u.name.lower() == "identity" and not u.args))
                if not known:
                    suggestion = did_you_mean(u.name, list(SPELLINGS) + list(program.blocks))
                    diags.error("E201", f"unknown layer or block `{u.name}`", u.name_span,
                                hint=f"did you mean `{suggestion}`?" if suggestion else None)
            elif isinstance(u, S.Group):
                stack.append(u.body)
            elif isinstance(u, S.Branch):
                stack.extend(u.branches)
            elif isinstance(u, S.Cond):
                stack.append(u.then)
                if u.orelse is not None:
                    stack.append(u.orelse)
    diags.check()
    return list(program.blocks)


def is_library(program: Program) -> bool:
    main = program.main
    return not main.inputs and not main.body and not main.trains and bool(
        main.blocks or main.includes)


def _hashable(v: Any) -> Any:
    return v if not isinstance(v, list) else tuple(v)


MERGES = {"concat": Concat, "add": Add}  # `concat { a | b }`, `add { a | b }`


def build_ir(program: Program, diags: Diagnostics, source: str) -> Model:
    """Expand a loaded program into an un-inferred IR Model."""
    main = program.main
    if main.model is not None:
        name, span = main.model.name, main.model.span
    else:
        name = os.path.splitext(os.path.basename(main.path))[0]
        span = S.Span(main.path, 1, 1, 1, 2)
    for extra in main.extra_models:
        diags.error("E210", "the model is named more than once", extra.span,
                    notes=(f"first named at {span}",))
    problem = identifier_problem(name)
    if problem:
        diags.error("E202", f"`{name}` cannot name a model", span,
                    hint=f"{problem}; name it with a line such as `model my_net`")
    if not main.inputs:
        hint = ("this file only defines blocks: `include` it from a spec" if is_library(program)
                else None)
        raise diags.fatal("E208", "the spec has no input", S.Span(main.path, 1, 1, 1, 2),
                          expected="a line such as `input 32*32*3` (or `input 32x32x3`)",
                          hint=hint)
    for extra in main.inputs[1:]:
        diags.error("E209", "the input is declared more than once", extra.span,
                    notes=(f"first declared at {main.inputs[0].span}",))
    decl = main.inputs[0]
    ev = Evaluator({}, diags)
    if len(decl.dims) not in (1, 3):
        raise diags.fatal("E303", "the input is H*W*C (a feature map) or N (a vector)",
                          decl.span, received=f"{len(decl.dims)} dimensions")
    dims = []
    for d in decl.dims:
        v = ev.eval(d)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise diags.fatal("E304", "input dimensions must be positive integers", d.span,
                              received=show(v))
        dims.append(v)
    if not main.body:
        raise diags.fatal("E003", "the spec has an input but no layers", decl.span,
                          hint="add layers after the input, e.g. `C(6*5*5, s1, same) B A(relu)`")
    training = build_training(main.trains, diags)
    ex = Expander(program, diags)
    ex.count_seq(main.body, ev, ())
    ex.scopes[""].used.add("input")
    ex.nodes.append(Input(name="input", shape=tuple(dims), loc=loc(decl.span)))
    out = ex.expand_seq(main.body, ev, "", "input")
    diags.check()
    defs = tuple(
        BlockDefinition(
            name=b.name,
            params=tuple(BlockParam(name=p.name, default=_source_text(diags, p.default))
                         for p in b.params),
            loc=loc(b.span))
        for b in program.blocks.values()
        if any(i.block == b.name for i in ex.instances))
    return Model(name=name, source=source, input_shape=tuple(dims), nodes=tuple(ex.nodes),
                 output=out, blocks=tuple(ex.instances), block_defs=defs, training=training)


def _source_text(diags: Diagnostics, e: S.Expr | None) -> str | None:
    if e is None:
        return None
    lines = diags.sources.texts.get(e.span.file)
    if lines and e.span.line == e.span.end_line:
        return lines[e.span.line - 1][e.span.col - 1:e.span.end_col - 1]
    return None


__all__ = ["load", "build_ir", "identifier_problem", "snake", "Program", "SpecError"]

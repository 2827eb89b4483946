"""Syntax tree -> IR graph: resolve includes and names, expand blocks, branches,
conditions and repetitions into a flat, topologically ordered list of nodes.

Two walks over the syntax tree:

1. `count`: exactly how many nodes (and block instances) the spec expands to,
   computed arithmetically (a repeat multiplies, a sequence is counted once per
   environment, so a block called with the same arguments is counted once), so
   `x(1000000000)` is refused in microseconds, not after filling memory. It
   resolves as it counts: it binds each layer call's arguments, evaluates
   conditions and repeats, finds recursive blocks and over-deep block calls,
   and records a plan per sequence: the elements that make anything.
2. `expand`: follows the plans, builds the nodes, names them in the seeds'
   style (`c1 b1 a1 p1 d1`, `resnet_block2.c1`) and records every block
   instance. Its work is proportional to what it builds: an element that makes
   nothing (an empty group repeated 2**50 times) is never visited.
"""

from __future__ import annotations

import builtins
import keyword
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from archc.diagnostics import Diagnostics, SpecError, did_you_mean
from archc.ir import BlockDefinition, BlockInstance, BlockParam, Model
from archc.ir.kinds import Add, Concat, Input, Loc, Mul, Node
from archc.language import syntax as S
from archc.language.bind import SPELLINGS, layer_list, unknown_layer_hint
from archc.language.parser import parse, read_source
from archc.language.train_section import build_training
from archc.language.values import ArgReader, Evaluator, FuncVal, Sym, Tagged, show
from archc.limits import LIMITS
from archc.passes.infer import node_span

# Words of the language itself, and names a generated module needs for itself.
RESERVED = {
    "model",
    "include",
    "input",
    "Input",
    "block",
    "train",
    "concat",
    "add",
    "if",
    "else",
    "as",
    "identity",
    "x",
    "self",
    "super",
    "keras",
    "layers",
    "ops",
    "nn",
    "torch",
    "tf",
    "F",
    "np",
    "math",
    "Model",
    "Module",
    "name",
    "inputs",
    "in_channels",
    "optimizer",
    "scheduler",
    "schedule",
}
SHORTHAND = re.compile(r"^[spx][0-9]+$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BARE_FIRST = {"flatten", "input"}


def identifier_problem(name: str, kind: str | None = None) -> str | None:
    """Why `name` cannot become a Python identifier in generated code, or None.
    With `kind` (model, block, parameter, node), also why a backend cannot use it
    in the form it takes there (backends/names.py)."""
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
    if kind is not None:
        from backends.names import problem

        return problem(kind, name)
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
    if not text.strip() or (
        not main.body
        and not main.inputs
        and not main.blocks
        and not main.includes
        and main.model is None
    ):
        span = S.Span(path, 1, 1, 1, 2)
        raise diags.fatal(
            "E003",
            f"`{path}` is empty",
            span,
            expected="`input H*W*C` followed by layers",
            hint="for example:  input 32*32*3  C(6*5*5, s1, same) B A(relu)",
        )
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
                raise diags.fatal(
                    "E504", f"more than {LIMITS.max_includes} files included", inc.span
                )
            if not os.path.isfile(target):
                diags.error(
                    "E001",
                    f"cannot include `{inc.path}`: no such file",
                    inc.span,
                    hint=f"include paths are relative to `{base or '.'}`",
                )
                continue
            sub = parse(read_source(target, diags), target, diags)
            for what, items in (("input", sub.inputs), ("layers", sub.body), ("train", sub.trains)):
                if items:
                    first = items[0]
                    diags.error(
                        "E207",
                        f"an included file may define only blocks, but `{inc.path}` has {what}",
                        getattr(first, "span", inc.span),
                        hint="move the network itself into the spec that includes it",
                    )
            queue.append(sub)
    return program


def _define_block(program: Program, b: S.BlockDef, diags: Diagnostics) -> None:
    problem = identifier_problem(b.name, "block")
    if problem:
        # Reported once here; the block is still defined so that its calls do not
        # each report an unknown name as well.
        diags.error("E202", f"`{b.name}` cannot name a block", b.name_span, hint=problem)
        if b.name in SPELLINGS:
            return
    if b.name in program.blocks:
        first = program.blocks[b.name].span
        diags.error(
            "E205",
            f"block `{b.name}` is defined twice",
            b.name_span,
            notes=(f"first defined at {first}",),
            hint="rename one of them",
        )
        return
    names = set()
    for p in b.params:
        problem = identifier_problem(p.name, "parameter")
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
            diags.error(
                "E303",
                f"parameter `{p.name}` without a default follows one with a default",
                p.span,
                hint="put parameters with defaults last",
            )
    program.blocks[b.name] = b


# ---------------------------------------------------------------------------
# Expansion
# ---------------------------------------------------------------------------


@dataclass
class _Scope:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    used: set[str] = field(default_factory=set)


class _Env(Evaluator):
    """An evaluator with the key of its environment: the block and the exact
    values of its arguments (`repr`, so that 2 and 2.0 differ). What the count
    learns about a sequence is memoised under this key."""

    def __init__(self, env: dict[str, Any], diags: Diagnostics, key: tuple):
        super().__init__(env, diags)
        self.key = key


@dataclass
class _Plan:
    """What one sequence makes in one environment: its node and block-instance
    counts, the depth of block calls below it, and the elements that make
    anything, each with its repeat count and what the count resolved for it
    (a layer call's bound nodes, a block call's environment, a condition's
    chosen sequence). The expansion walks only these, so an element that makes
    nothing costs nothing however often it is repeated."""

    nodes: int
    instances: int
    depth: int
    steps: list[tuple[S.Element, int, Any]]
    moves: bool = False  # a reference `@name` in it moves the chain without a node


@dataclass
class _Named:
    """A tensor named with `as`: the node that makes it (for a block instance or a
    group, its output), where the name is written, and the merge branches it was
    made in, outermost first: (merge number, branch index)."""

    node: str
    span: S.Span
    where: tuple[tuple[int, int], ...]


class Expander:
    def __init__(self, program: Program, diags: Diagnostics):
        self.program = program
        self.blocks = program.blocks
        self.diags = diags
        self.nodes: list[Node] = []
        self.instances: list[BlockInstance] = []
        self.declared: dict[str, S.Span] = {}  # path of each `as` name -> where
        self.scopes: dict[str, _Scope] = defaultdict(_Scope)
        self._plans: dict[tuple, _Plan] = {}
        # references `@name` (docs/language.md, "Skips to earlier tensors")
        self.names: dict[str, dict[str, _Named]] = defaultdict(dict)  # scope -> its names
        self.bodies: dict[str, S.Seq | list[S.Element]] = {}  # scope -> the syntax it expands
        self.groups: set[str] = set()  # the scopes that are named groups, not block instances
        self.where: tuple[tuple[int, int], ...] = ()  # the merge branches being expanded
        self.merges = 0
        self.left: dict[str, S.TensorRef] = {}  # a tensor a reference moved away from
        # the reference each open branch (or block instance) last followed, and
        # per merge node the start of each branch (Model._branches)
        self.followed: list[tuple[S.TensorRef, _Named] | None] = []
        self.branches: dict[str, tuple[tuple[str, str | None], ...]] = {}
        # the tensor the last reference went to, until a node reads it; and the
        # nodes that read a tensor through a reference (Model._skips, the report)
        self.jump: tuple[str, str] | None = None
        self.skips: dict[str, str] = {}

    # -- block arguments
    def bind_block(self, call: S.Call, ev: Evaluator) -> dict[str, Any]:
        b = self.blocks[call.name]
        env: dict[str, Any] = {}
        params = {p.name: p for p in b.params}
        pos = [a for a in call.args if isinstance(a, S.PosArg)]
        if len(pos) > len(b.params):
            raise self.diags.fatal(
                "E303",
                f"block `{b.name}` takes {len(b.params)} argument(s), {len(pos)} given",
                pos[len(b.params)].span,
                expected=f"{b.name}({', '.join(p.name for p in b.params)})",
            )
        for p, a in zip(b.params, pos):
            env[p.name] = ev.eval(a.value)
        for a in call.args:
            if isinstance(a, S.Footnote):
                continue
            if isinstance(a, S.KwArg):
                if a.key not in params:
                    suggestion = did_you_mean(a.key, params)
                    raise self.diags.fatal(
                        "E302",
                        f"block `{b.name}` has no parameter `{a.key}`",
                        a.span,
                        expected=", ".join(params) or "no parameters",
                        hint=f"did you mean `{suggestion}`?" if suggestion else None,
                    )
                if a.key in env:
                    raise self.diags.fatal("E306", f"parameter `{a.key}` is given twice", a.span)
                env[a.key] = ev.eval(a.value)
        inner = Evaluator(env, self.diags)
        for p in b.params:
            if p.name not in env:
                if p.default is None:
                    raise self.diags.fatal(
                        "E303",
                        f"block `{b.name}` needs parameter `{p.name}`",
                        call.span,
                        expected=f"{b.name}({', '.join(q.name for q in b.params)})",
                    )
                env[p.name] = inner.eval(p.default)
        return env

    def _repeat(self, e: S.Element, ev: Evaluator) -> int:
        if e.repeat is None:
            return 1
        n = ev.eval(e.repeat)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise self.diags.fatal(
                "E304", "a repeat count must be a positive integer", e.repeat.span, received=show(n)
            )
        return n

    def _test(self, c: S.Cond, ev: Evaluator) -> bool:
        v = ev.eval(c.test)
        if isinstance(v, Sym) and v.name in ("Yes", "yes", "True", "true"):
            return True
        if isinstance(v, Sym) and v.name in ("No", "no", "None", "False", "false"):
            return False
        if isinstance(v, int) and not isinstance(v, bool):
            return v != 0
        raise self.diags.fatal(
            "E304",
            "an `if` needs an integer condition",
            c.test.span,
            received=show(v),
            hint="compare with `==`, `<`, ... or use 0/1",
        )

    def _bind_layer(self, u: S.Call, ev: Evaluator) -> list[tuple[type[Node], dict]]:
        """The nodes a layer call makes (kind and fields), or [] (with an error
        reported) for an unknown name. `identity` and `(None)` rows make none."""
        if u.name.lower() == "identity" and not u.args:
            return []
        binder = SPELLINGS.get(u.name)
        if binder is None:
            self.diags.error(
                "E201",
                f"unknown layer or block `{u.name}`",
                u.name_span,
                expected=f"a layer ({layer_list()}) or a block defined with `block`",
                hint=unknown_layer_hint(u.name, self.blocks)
                or "define it with `block Name(params) { ... }` or `include` the file that does",
            )
            return []
        return binder.bind(ArgReader(u, ev, binder.kind.title, binder.options), u.name)

    # -- walk 1: counting (and resolving: names, arguments, conditions, repeats)
    def count_seq(self, seq: S.Seq | list[S.Element], ev: _Env, stack: tuple[str, ...]) -> _Plan:
        """The exact number of nodes and block instances `seq` makes in `ev`,
        computed without building anything: a repeat multiplies, and a sequence
        is counted once per environment (a block called with the same arguments
        a thousand times is counted once)."""
        elements = seq.elements if isinstance(seq, S.Seq) else seq
        memo = (id(elements), ev.key)
        plan = self._plans.get(memo)
        if plan is not None:
            return plan
        nodes = instances = depth = 0
        moves = False
        steps: list[tuple[S.Element, int, Any]] = []
        for e in elements:
            try:
                n, k, d, data = self._count_unit(e, ev, stack)
                reps = self._repeat(e, ev)
                move = self._moves(e, data, ev)
            except SpecError:
                # the element's error is reported: it makes nothing, and the rest of
                # the file is still checked, which does not depend on it (expansion
                # knows no shapes; inference runs only on a file without errors)
                if len(self.diags.items) >= self.diags.limit:
                    raise
                continue
            n, k = n * reps, k * reps
            self._check_size(n, k, e.span, "this")
            if n or k:
                steps.append((e, reps, data))
            elif move or (e.alias is not None and reps == 1):
                # makes no node, but moves the chain or names the tensor passing
                # through: visited once (repeating what makes nothing changes nothing)
                steps.append((e, 1, data))
            moves = moves or move
            nodes, instances, depth = nodes + n, instances + k, max(depth, d)
            if nodes > LIMITS.max_nodes or instances > LIMITS.max_nodes:
                # stop here rather than bind the rest of a huge sequence
                first = elements[0].span
                self._check_size(
                    nodes,
                    instances,
                    S.Span(first.file, first.line, first.col, e.span.end_line, e.span.end_col),
                    "this sequence",
                    partial=e is not elements[-1],
                )
        plan = self._plans[memo] = _Plan(nodes, instances, depth, steps, moves)
        return plan

    def _moves(self, e: S.Element, data: Any, ev: _Env) -> bool:
        """Whether an element contains a reference `@name` (so that it matters
        even where it makes no node)."""
        u = e.unit
        if isinstance(u, S.TensorRef):
            return True
        if isinstance(u, S.Group):
            return self._plans[(id(u.body.elements), ev.key)].moves
        if isinstance(u, S.Cond) and data is not None:
            return self._plans[(id(data.elements), ev.key)].moves
        return False  # a block's body and a merge's branches end inside it

    def _check_size(
        self, nodes: int, instances: int, span: S.Span | None, what: str, partial: bool = False
    ) -> None:
        """Refuse more than LIMITS.max_nodes nodes or block instances. The figure
        is exact, or (`partial`: the count stopped at the limit, in the middle
        of a long sequence) a lower bound, and then said to be one."""
        for n, unit in ((nodes, "nodes"), (instances, "block instances")):
            if n > LIMITS.max_nodes:
                figure = f"at least {n:,}" if partial else f"{n:,}"
                raise self.diags.fatal(
                    "E501",
                    f"{what} expands to {figure} {unit}, more than archc's limit of "
                    f"{LIMITS.max_nodes:,}",
                    span,
                    hint="check the repeat counts; no real network is this large",
                )

    def _count_unit(
        self, e: S.Element, ev: _Env, stack: tuple[str, ...]
    ) -> tuple[int, int, int, Any]:
        """(nodes, block instances, block-call depth, resolved data) of one unit."""
        u = e.unit
        if isinstance(u, S.Call):
            if u.name not in self.blocks:
                specs = self._bind_layer(u, ev)
                return len(specs), 0, 0, specs
            if u.name in stack:
                chain = " -> ".join(stack[stack.index(u.name) :] + (u.name,))
                raise self.diags.fatal(
                    "E204",
                    f"block `{u.name}` calls itself ({chain})",
                    u.name_span,
                    hint="blocks cannot be recursive; use a repeat `xN` instead",
                )
            if len(stack) >= LIMITS.max_nesting:
                raise self.diags.fatal(
                    "E503", f"blocks call each other more than {LIMITS.max_nesting} deep", u.span
                )
            env = self.bind_block(u, ev)
            key = (u.name, tuple(sorted((k, repr(v)) for k, v in env.items())))
            inner = _Env(env, self.diags, key)
            plan = self.count_seq(self.blocks[u.name].body, inner, stack + (u.name,))
            if len(stack) + plan.depth >= LIMITS.max_nesting:  # a memoised body
                raise self.diags.fatal(
                    "E503", f"blocks call each other more than {LIMITS.max_nesting} deep", u.span
                )
            return plan.nodes, plan.instances + 1, plan.depth + 1, inner
        if isinstance(u, S.Group):
            plan = self.count_seq(u.body, ev, stack)
            return plan.nodes, plan.instances + (e.alias is not None), plan.depth, None
        if isinstance(u, S.Branch):
            plans = [self.count_seq(b, ev, stack) for b in u.branches]
            return (
                1 + sum(p.nodes for p in plans),
                sum(p.instances for p in plans),
                max(p.depth for p in plans),
                None,
            )
        if isinstance(u, S.Cond):
            chosen = u.then if self._test(u, ev) else u.orelse
            if chosen is None:
                return 0, 0, 0, None
            plan = self.count_seq(chosen, ev, stack)
            return plan.nodes, plan.instances, plan.depth, chosen
        if isinstance(u, S.TensorRef):
            if e.repeat is not None or e.alias is not None:
                extra = "repeated" if e.repeat is not None else "named"
                raise self.diags.fatal(
                    "E215",
                    f"a reference `@{u.name}` cannot be {extra}",
                    e.repeat.span if e.repeat is not None else e.alias_span,
                    hint=f"`@{u.name}` only continues from `{u.name}`; "
                    "repeat or name the layers that follow it",
                )
            return 0, 0, 0, None
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
        problem = identifier_problem(local, "node")
        if problem:
            self.diags.error("E202", f"`{local}` cannot name a layer or block", span, hint=problem)
            return None
        st = self.scopes[scope]
        if local in st.used:
            self.diags.error(
                "E206",
                f"the name `{local}` is already used here",
                span,
                hint="names must be unique within a block",
            )
            return None
        st.used.add(local)
        path = f"{scope}.{local}" if scope else local
        self.declared[path] = span
        return path

    def expand_seq(self, seq: S.Seq | list[S.Element], ev: _Env, scope: str, x: str) -> str:
        """Build the nodes of `seq`, following the plan its count made (only
        the elements that make something; arguments already bound)."""
        elements = seq.elements if isinstance(seq, S.Seq) else seq
        for e, reps, data in self._plans[(id(elements), ev.key)].steps:
            for i in range(reps):
                alias = e.alias
                if alias is not None and reps > 1:
                    alias = f"{alias}_{i + 1}"
                made = len(self.nodes)
                x = self._expand_unit(e, data, ev, scope, x, alias)
                if alias is not None:
                    u, tensor = e.unit, x
                    layer = isinstance(u, S.Call) and u.name not in self.blocks
                    if layer and made < len(self.nodes):
                        tensor = self.nodes[made].name  # the layer that carries the name
                    elif layer or isinstance(u, S.Cond):
                        # no node carries the name: it names the tensor the element gives
                        self.claim(scope, alias, e.alias_span or e.span)
                    self.names[scope].setdefault(
                        alias, _Named(tensor, e.alias_span or e.span, self.where)
                    )
        return x

    # -- references `@name`
    def follow(self, ref: S.TensorRef, scope: str, x: str) -> str:
        """The tensor `@name` continues from (or `x`, with an error reported)."""
        named = self.names[scope].get(ref.name)
        if named is None:
            self._not_found(ref, scope)
            return x
        if self._sibling(named):
            self.diags.error(
                "E213",
                f"`{ref.name}` is made in another branch of a merge that is not closed yet",
                ref.span,
                notes=(f"`{ref.name}` is defined at {named.span}",),
                hint="a branch starts from the tensor before its merge; the names made in "
                "other branches can be used after the merge",
            )
            return x
        self.left.setdefault(x, ref)
        self.jump = (named.node, ref.name)
        if self.followed:
            self.followed[-1] = (ref, named)
        return named.node

    def _sibling(self, named: _Named) -> bool:
        """Whether `named` was made in another branch of a merge still being expanded."""
        for (m1, b1), (m2, b2) in zip(named.where, self.where):
            if (m1, b1) != (m2, b2):
                return m1 == m2
        return False

    def _visible(self, scope: str) -> list[str]:
        return [n for n, named in self.names[scope].items() if not self._sibling(named)]

    def _not_found(self, ref: S.TensorRef, scope: str) -> None:
        name, where = ref.name, "this block" if scope else "the spec"
        if scope in self.groups:
            where = f"the group `{scope.rsplit('.', 1)[-1]}`"
        numbered = [
            n for n in self._visible(scope) if re.fullmatch(re.escape(name) + r"_[0-9]+", n)
        ]
        if numbered:  # `X x2 as stage`: `stage_1`, `stage_2`
            self.diags.error(
                "E213",
                f"`{name}` names a repeated element: each repetition has its own name",
                ref.span,
                expected=", ".join(f"`@{n}`" for n in numbered),
                hint=f"the last repetition's output is `@{numbered[-1]}`",
            )
            return
        written = _written(self.bodies.get(scope, []), name)
        if written is not None:
            span, in_if = written
            if (span.line, span.col) > (ref.span.line, ref.span.col):
                message = f"`{name}` is used before it is defined"
                hint = f"a reference goes back to a tensor made before it; move `@{name}` after `as {name}`"
            elif in_if:
                message = f"`{name}` is defined in an `if` that is not taken here"
                hint = "refer to it only where its `if` is taken, or name a tensor outside the `if`"
            elif self.diags.items:
                return  # the element it names was refused: its error is reported
            else:
                message = f"`{name}` names no tensor here"
                hint = "the element named so makes no layer"
            self.diags.error(
                "E213", message, ref.span, notes=(f"`{name}` is defined at {span}",), hint=hint
            )
            return
        outer = [p for p in self.names if p != scope and scope.startswith(p + "." if p else "")]
        for p in sorted(outer, key=len, reverse=True):
            if name in self.names[p]:
                self.diags.error(
                    "E213",
                    f"`{name}` is defined outside {where}",
                    ref.span,
                    notes=(f"`{name}` is defined at {self.names[p][name].span}",),
                    hint="a block and a named group see only their input and the names "
                    "defined in them",
                )
                return
        for p in self.names:
            if p.startswith(scope + "." if scope else "") and name in self.names[p]:
                inner = p[len(scope) + 1 :] if scope else p
                self.diags.error(
                    "E213",
                    f"`{name}` is local to `{inner}`",
                    ref.span,
                    notes=(f"`{name}` is defined at {self.names[p][name].span}",),
                    hint="the names inside a block instance or a named group are its own; "
                    "refer to the instance or group by its name (its output)",
                )
                return
        visible = self._visible(scope)
        suggestion = did_you_mean(name, visible)
        hint = f"did you mean `@{suggestion}`?" if suggestion else None
        if hint is None and any(n.name in (name, f"{scope}.{name}") for n in self.nodes):
            hint = f"`{name}` is a generated name; name the tensor with `as`, e.g. `... as skip1`"
        self.diags.error(
            "E212",
            f"no tensor is named `{name}` in {where}",
            ref.span,
            expected=(
                "a name defined before it: " + ", ".join(f"`{n}`" for n in visible)
                if visible
                else "a name given with `as` before it"
            ),
            hint=hint or "name a tensor with `as` before referring to it with `@`",
        )

    def _expand_unit(
        self, e: S.Element, data: Any, ev: _Env, scope: str, x: str, alias: str | None
    ) -> str:
        u = e.unit
        if isinstance(u, S.Call):
            if u.name in self.blocks:
                return self._expand_block(e, u, data, scope, x, alias)
            for i, (kind_cls, fields) in enumerate(data):
                name = None
                if alias is not None and i == 0:
                    name = self.claim(scope, alias, e.alias_span or u.span)
                if name is None:
                    name = self.fresh(scope, kind_cls.prefix)
                self.nodes.append(
                    kind_cls(name=name, inputs=(x,), scope=scope, loc=loc(u.span), **fields)
                )
                if self.jump is not None and self.jump[0] == x:
                    self.skips[name] = self.jump[1]
                self.jump = None
                x = name
            return x
        if isinstance(u, S.Group):
            if alias is None:
                return self.expand_seq(u.body, ev, scope, x)
            path = self.claim(scope, alias, e.alias_span or u.span)
            if path is None:
                return self.expand_seq(u.body, ev, scope, x)
            self.instances.append(BlockInstance(path=path, block="", args={}, loc=loc(u.span)))
            self.bodies[path] = u.body
            self.groups.add(path)
            return self.expand_seq(u.body, ev, path, x)
        if isinstance(u, S.Branch):
            merge, outer, outs, refs = self.merges, self.where, [], []
            self.merges += 1
            starts = []
            for i, b in enumerate(u.branches):
                self.where = outer + ((merge, i),)
                self.jump = None
                self.followed.append(None)
                outs.append(self.expand_seq(b, ev, scope, x))
                followed = self.followed.pop()
                if followed is None:
                    starts.append((x, None))
                else:
                    ref, named = followed
                    if outs[-1] == named.node:  # `@name` ends the branch
                        refs.append(ref.name)
                    said = (
                        f"from `@{ref.name}` ({ref.span}): `{ref.name}` is defined at {named.span}"
                    )
                    starts.append((named.node, said))
            self.where = outer
            cls = MERGES[u.merge]
            name = None
            if alias is not None:
                name = self.claim(scope, alias, e.alias_span or u.span)
            name = name or self.fresh(scope, cls.prefix)
            self.nodes.append(cls(name=name, inputs=tuple(outs), scope=scope, loc=loc(u.span)))
            self.branches[name] = tuple(starts)
            self.jump = None
            if refs:
                self.skips[name] = ", ".join(refs)
            return name
        if isinstance(u, S.Cond):
            if data is None:  # not taken, named: the name names the input
                return x
            return self.expand_seq(data, ev, scope, x)  # the chosen sequence
        if isinstance(u, S.TensorRef):
            return self.follow(u, scope, x)
        raise AssertionError(u)

    def _expand_block(
        self, e: S.Element, u: S.Call, inner: _Env, scope: str, x: str, alias: str | None
    ) -> str:
        path = None
        if alias is not None:
            path = self.claim(scope, alias, e.alias_span or u.span)
        path = path or self.fresh(scope, snake(u.name))
        self.instances.append(
            BlockInstance(
                path=path,
                block=u.name,
                args={k: arg_value(v) for k, v in inner.env.items()},
                loc=loc(u.span),
            )
        )
        self.bodies[path] = self.blocks[u.name].body
        self.followed.append(None)  # its references stay inside it
        out = self.expand_seq(self.blocks[u.name].body, inner, path, x)
        self.followed.pop()
        return out


def _written(body: S.Seq | list[S.Element], name: str) -> tuple[S.Span, bool] | None:
    """Where `as name` is written in a scope's own syntax (not in the named groups
    and blocks it calls, which are scopes of their own), and whether in an `if`.
    A repeated `X x2 as stage` writes `stage_1` and `stage_2`."""
    stack = [(body.elements if isinstance(body, S.Seq) else body, False)]
    while stack:
        elements, in_if = stack.pop()
        for e in elements:
            if e.alias == name or (
                e.alias is not None
                and e.repeat is not None
                and re.fullmatch(re.escape(e.alias) + r"_[0-9]+", name)
            ):
                return e.alias_span or e.span, in_if
            u = e.unit
            if isinstance(u, S.Group) and e.alias is None:
                stack.append((u.body.elements, in_if))
            elif isinstance(u, S.Branch):
                stack.extend((b.elements, in_if) for b in u.branches)
            elif isinstance(u, S.Cond):
                stack.append((u.then.elements, True))
                if u.orelse is not None:
                    stack.append((u.orelse.elements, True))
    return None


def check_library(program: Program, diags: Diagnostics) -> list[str]:
    """A file that only defines blocks: check that every name its blocks call is a
    layer kind or a block. Returns the block names."""
    stack: list[S.Seq] = [b.body for b in program.blocks.values()]
    while stack:
        seq = stack.pop()
        for e in seq.elements:
            u = e.unit
            if isinstance(u, S.Call):
                known = (
                    u.name in SPELLINGS
                    or u.name in program.blocks
                    or (u.name.lower() == "identity" and not u.args)
                )
                if not known:
                    diags.error(
                        "E201",
                        f"unknown layer or block `{u.name}`",
                        u.name_span,
                        hint=unknown_layer_hint(u.name, program.blocks),
                    )
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
    return (
        not main.inputs and not main.body and not main.trains and bool(main.blocks or main.includes)
    )


def _hashable(v: Any) -> Any:
    return v if not isinstance(v, list) else tuple(v)


MERGES = {"concat": Concat, "add": Add, "mul": Mul}  # `concat { a | b }`, `add`, `mul`


def build_ir(
    program: Program,
    diags: Diagnostics,
    source: str,
    default_name: str | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Model:
    """Expand a loaded program into an un-inferred IR Model. Without a `model` line
    the model is named `default_name`, or else after its file. `input_shape`, when
    given, replaces the size the spec's `input` line declares (`archc report
    --input`): the spec is compiled at that size, its shape errors reported as usual."""
    main = program.main
    if main.model is not None:
        name, span = main.model.name, main.model.span
    else:
        name = default_name or os.path.splitext(os.path.basename(main.path))[0]
        span = S.Span(main.path, 1, 1, 1, 2)
    for extra in main.extra_models:
        diags.error(
            "E210",
            "the model is named more than once",
            extra.span,
            notes=(f"first named at {span}",),
        )
    problem = identifier_problem(name, "model")
    if problem:
        diags.error(
            "E202",
            f"`{name}` cannot name a model",
            span,
            hint=f"{problem}; name it with a line such as `model my_net`",
        )
    if not main.inputs:
        hint = (
            "this file only defines blocks: `include` it from a spec"
            if is_library(program)
            else None
        )
        raise diags.fatal(
            "E208",
            "the spec has no input",
            S.Span(main.path, 1, 1, 1, 2),
            expected="a line such as `input 32*32*3` (or `input 32x32x3`)",
            hint=hint,
        )
    for extra in main.inputs[1:]:
        diags.error(
            "E209",
            "the input is declared more than once",
            extra.span,
            notes=(f"first declared at {main.inputs[0].span}",),
        )
    decl = main.inputs[0]
    ev = Evaluator({}, diags)
    if len(decl.dims) not in (1, 3):
        raise diags.fatal(
            "E303",
            "the input is H*W*C (a feature map) or N (a vector)",
            decl.span,
            received=f"{len(decl.dims)} dimensions",
        )
    dims = []
    for d in decl.dims:
        v = ev.eval(d)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise diags.fatal(
                "E304", "input dimensions must be positive integers", d.span, received=show(v)
            )
        dims.append(v)
    if input_shape is not None:
        dims = list(input_shape)
    if not main.body:
        raise diags.fatal(
            "E003",
            "the spec has an input but no layers",
            decl.span,
            hint="add layers after the input, e.g. `C(6*5*5, s1, same) B A(relu)`",
        )
    training = build_training(main.trains, diags)
    ex = Expander(program, diags)
    ev = _Env({}, diags, ())
    total = ex.count_seq(main.body, ev, ()).nodes + 1  # and the input node
    if total > LIMITS.max_nodes:
        raise diags.fatal(
            "E501",
            f"the spec expands to {total:,} nodes, more than archc's limit of {LIMITS.max_nodes:,}",
            main.body[-1].span,
            hint="check the repeat counts; no real network is this large",
        )
    ex.scopes[""].used.add("input")
    ex.nodes.append(Input(name="input", shape=tuple(dims), loc=loc(decl.span)))
    ex.names[""]["input"] = _Named("input", decl.span, ())
    ex.bodies[""] = main.body
    out = ex.expand_seq(main.body, ev, "", "input")
    _check_unused(ex, out, diags)
    _check_collisions(program, ex, name, diags)
    diags.check()
    if len(ex.nodes) == 1:  # only the input: every layer was switched off (`B(No)`, `if 0`)
        library = (
            (
                "; this file defines blocks: if it is a library, drop its top-level "
                "layers and input and `include` it from a spec"
            )
            if main.blocks
            else ""
        )
        raise diags.fatal(
            "E003",
            "the spec's layers produce no layer",
            main.body[0].span,
            hint="every layer here is switched off (such as `B(None)` or an "
            f"`if` whose condition is 0){library}",
        )
    defs = tuple(
        BlockDefinition(
            name=b.name,
            params=tuple(
                BlockParam(name=p.name, default=_default_text(diags, p.default)) for p in b.params
            ),
            loc=loc(b.span),
            exprs=_body_arithmetic(b),
        )
        for b in program.blocks.values()
        if any(i.block == b.name for i in ex.instances)
    )
    model = Model(
        name=name,
        source=source,
        input_shape=tuple(dims),
        nodes=tuple(ex.nodes),
        output=out,
        blocks=tuple(ex.instances),
        block_defs=defs,
        training=training,
    )
    model._branches = ex.branches
    model._skips = ex.skips
    return model


def _check_unused(ex: Expander, out: str, diags: Diagnostics) -> None:
    """A reference moves the chain away from the tensor before it: that tensor
    must be used elsewhere (a merge, another reference), or its layers would be
    built and never run (and Keras would leave them out of the model)."""
    if not ex.left:
        return
    used = {out}
    for n in ex.nodes:
        used.update(n.inputs)
    made = {n.name: n for n in ex.nodes if n.name in ex.left and n.name not in used}
    for tensor, ref in ex.left.items():
        if tensor in made:
            what = "the input" if tensor == "input" else f"the output of `{tensor}`"
            diags.error(
                "E214",
                f"{what} is never used",
                node_span(made[tensor], diags),
                notes=(f"`@{ref.name}` at {ref.span} continues from `{ref.name}` instead",),
                hint="use it in a merge (`concat { ... | }`, `add { ... | }`) or remove it",
            )


def _check_collisions(program: Program, ex: Expander, model: str, diags: Diagnostics) -> None:
    """Names that are fine alone but meet in a generated module: a block and the
    model, two blocks, a parameter and a block, a layer and a block or the
    parameters of the block it is in (backends/names.py says which forms meet)."""
    from backends.names import collision, derived_node_names

    def clash(what: str, name: str, span, candidates: list[tuple[str, str]]) -> None:
        """Report `name` (a `what`) against the first candidate it meets in generated code."""
        for kind, other in candidates:
            hint = collision(what, name, kind, other)
            if hint:
                shown = f"the name `{name}`" if what == "node" else f"{what} `{name}`"
                diags.error(
                    "E211",
                    f"{shown} clashes with the {kind} `{other}` in generated code",
                    span,
                    hint=hint,
                )
                return

    scope_block = {i.path: i.block for i in ex.instances}
    used = list(dict.fromkeys(i.block for i in ex.instances if i.block in program.blocks))
    others: list[tuple[str, str]] = [("model", model)]
    for b in used:
        clash("block", b, program.blocks[b].name_span, others)
        others.append(("block", b))
    for b in used:
        for p in program.blocks[b].params:
            clash("parameter", p.name, p.span, others)
    refused: set[str] = set()
    for path in dict.fromkeys(n.name for n in ex.nodes):
        # a declared name another layer of its scope takes in generated code
        # (backends/names.py: PyTorch's padding helper of `conv` is `self.conv_pad`)
        scope, _, local = path.rpartition(".")
        for text, what in derived_node_names(local).items():
            other = f"{scope}.{text}" if scope else text
            if other in ex.declared and other not in refused:
                refused.add(other)
                diags.error(
                    "E211",
                    f"the name `{text}` clashes with the layer `{local}` in generated code",
                    ex.declared[other],
                    hint=f"rename the layer; `{local}` also becomes {what}",
                )
    for path, span in ex.declared.items():
        if path in refused:
            continue
        scope, _, local = path.rpartition(".")
        candidates = list(others)
        block = scope_block.get(scope)
        if block in program.blocks:
            candidates += [("parameter", p.name) for p in program.blocks[block].params]
        clash("node", local, span, candidates)


def _body_arithmetic(b: S.BlockDef) -> tuple[str, ...]:
    """The arithmetic (`(4*filters)*1*1`, `4*filters`, `-k`) a block's layer
    arguments write with its parameters, as written, each once."""
    params = {p.name for p in b.params}
    out: dict[str, None] = {}

    def parts(e: S.Expr) -> tuple:
        if isinstance(e, S.BinOp):
            return e.left, e.right
        return (
            (e.operand,) if isinstance(e, S.Neg) else (e.inner,) if isinstance(e, S.Paren) else ()
        )

    def reads(e: S.Expr) -> bool:
        return (isinstance(e, S.Ref) and e.name in params) or any(map(reads, parts(e)))

    def text(e: S.Expr) -> str | None:
        if isinstance(e, S.Num):
            return repr(e.value)
        if isinstance(e, S.Ref):
            return e.name
        inner = [text(x) for x in parts(e)]
        if None in inner:
            return None
        if isinstance(e, S.BinOp):
            return f"{inner[0]}{e.op}{inner[1]}"
        return f"-{inner[0]}" if isinstance(e, S.Neg) else f"({inner[0]})"

    def walk(e: S.Expr) -> None:
        if isinstance(e, (S.BinOp, S.Neg)) and reads(e) and (t := text(e)) is not None:
            out[t] = None
        for x in parts(e):
            walk(x)

    seqs = [b.body]
    while seqs:
        for el in seqs.pop(0).elements:
            u = el.unit
            if isinstance(u, S.Call):
                for a in u.args:
                    if not isinstance(a, S.Footnote):
                        walk(a.value)
            elif isinstance(u, S.Group):
                seqs.append(u.body)
            elif isinstance(u, S.Branch):
                seqs.extend(u.branches)
            elif isinstance(u, S.Cond):
                seqs += [u.then] + ([u.orelse] if u.orelse is not None else [])
    return tuple(out)


def _default_text(diags: Diagnostics, e: S.Expr | None) -> str | None:
    """A parameter's default as written, white space left out (`(s==1)*(cin==x)`),
    so that the IR does not change when `archc fmt` re-spaces the spec."""
    text = _source_text(diags, e)
    return None if text is None else "".join(text.split())


def _source_text(diags: Diagnostics, e: S.Expr | None) -> str | None:
    if e is None:
        return None
    lines = diags.sources.texts.get(e.span.file)
    if lines and e.span.line == e.span.end_line:
        return lines[e.span.line - 1][e.span.col - 1 : e.span.end_col - 1]
    return None


__all__ = ["Program", "SpecError", "build_ir", "identifier_problem", "load", "snake"]

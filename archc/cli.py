"""The `archc` command line.

    archc check SPEC...                 compile, report errors, print a one-line summary
    archc report SPEC [--json|--markdown]
    archc ir SPEC --json                the inferred IR as JSON
    archc build SPEC... [--backend keras|torch|all] [-o DIR]
    archc build --all [--check]         every spec in specs/, every backend
    archc equiv SPEC [--dtype ...] [--direction ...] [--nodes]
                                        Keras and PyTorch builds compute the same function

Exit status: 0 success, 1 a spec has errors, 2 the command line is wrong.
These commands import no deep-learning framework.
"""

from __future__ import annotations

import argparse
import os
import sys

from archc import __version__

# pydantic looks for plugins through every installed distribution's entry points
# when its first model is built: tens of milliseconds beside tensorflow and torch.
# archc's own command line uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _compile(path: str, json_errors: bool, library_ok: bool = False):
    from archc.diagnostics import SpecError
    from archc.pipeline import check_spec, compile_spec

    try:
        return check_spec(path) if library_ok else compile_spec(path)
    except SpecError as e:
        print(e.to_json() if json_errors else e.render(), file=sys.stderr)
        return None


def cmd_check(args) -> int:
    failed = 0
    for path in args.specs:
        model = _compile(path, args.json, library_ok=True)
        if model is None:
            failed += 1
            continue
        if isinstance(model, list):
            if not args.quiet:
                print(f"ok  {path}: library of {len(model)} blocks ({', '.join(model)})")
            continue
        if not args.quiet:
            print(f"ok  {path}: {model.name}, {len(model.nodes) - 1} layers, "
                  f"{model.params:,} params, output {'x'.join(map(str, model.output_shape))}")
    return 1 if failed else 0


def cmd_report(args) -> int:
    from archc import report

    model = _compile(args.spec, args.json)
    if model is None:
        return 1
    if args.json:
        print(report.as_json(model))
    elif args.markdown:
        print(report.markdown(model))
    else:
        print(report.text(model))
    return 0


def cmd_ir(args) -> int:
    model = _compile(args.spec, True)
    if model is None:
        return 1
    print(model.model_dump_json(indent=2 if args.indent else None))
    return 0


def cmd_build(args) -> int:
    import glob

    from archc.diagnostics import SpecError
    from archc.pipeline import check_spec, compile_spec
    from backends import NAMES, get
    from backends.common import BackendError, write_module

    specs = list(args.specs)
    if args.all:
        specs += sorted(p for p in glob.glob(os.path.join("specs", "*.cnn")))
    if not specs:
        print("archc build: name a SPEC or use --all", file=sys.stderr)
        return 2
    backends = NAMES if args.backend == "all" else (args.backend,)
    failed = 0
    expected: dict[str, set[str]] = {b: set() for b in backends}
    stale: list[str] = []
    for path in specs:
        try:
            model = compile_spec(path) if not args.all else check_spec(path)
        except SpecError as e:
            print(e.render(), file=sys.stderr)
            failed += 1
            continue
        if isinstance(model, list):  # a library of blocks: nothing to generate
            continue
        for backend in backends:
            out_dir = args.output or os.path.join("generated", backend)
            if args.output and len(backends) > 1:
                out_dir = os.path.join(args.output, backend)
            try:
                source = get(backend).generate(model)
            except BackendError as e:
                print(f"error: {path}: {e}", file=sys.stderr)
                failed += 1
                continue
            target = os.path.join(out_dir, f"{model.name}.py")
            if target in expected[backend]:
                print(f"error: {path}: another spec already generates {target} "
                      f"(model names must be unique)", file=sys.stderr)
                failed += 1
                continue
            expected[backend].add(target)
            if args.check:
                try:
                    with open(target, encoding="utf-8") as f:
                        current = f.read()
                except OSError:
                    current = None
                if current != source:
                    stale.append(target)
                continue
            try:
                write_module(out_dir, model.name, source)
            except (BackendError, OSError) as e:
                print(f"error: {e}", file=sys.stderr)
                failed += 1
                continue
            if not args.quiet:
                entry = (f"build_{model.name}()" if backend == "keras"
                         else get(backend).model_class_name(model) + "()")
                print(f"wrote {target}  ({entry})")
    if args.check:
        if args.all:
            for backend in backends:
                out_dir = args.output or os.path.join("generated", backend)
                for f in sorted(glob.glob(os.path.join(out_dir, "*.py"))):
                    if f not in expected[backend]:
                        stale.append(f"{f} (no spec generates it)")
        for s in stale:
            print(f"stale: {s}", file=sys.stderr)
        if stale:
            print("run `archc build --all` and commit the result", file=sys.stderr)
        elif not failed and not args.quiet:
            print(f"up to date: {sum(len(v) for v in expected.values())} generated files")
        return 1 if (stale or failed) else 0
    return 1 if failed else 0


def cmd_equiv(args) -> int:
    model = _compile(args.spec, False)
    if model is None:
        return 1
    from archc import equiv
    from backends.common import BackendError
    from backends.transfer import TransferError

    try:
        result = equiv.check(model, dtype=args.dtype, batch=args.batch, seed=args.seed,
                             direction=args.direction, nodes=args.nodes)
    except (BackendError, TransferError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(equiv.report(model, result))
    return 0 if result.ok else 1


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archc", description="Compile .cnn CNN architecture specs.")
    p.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="compile specs and report errors")
    c.add_argument("specs", nargs="+", metavar="SPEC")
    c.add_argument("--json", action="store_true", help="errors as JSON")
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("report", help="shapes, parameters, MACs and receptive fields")
    r.add_argument("spec", metavar="SPEC")
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true")
    r.set_defaults(func=cmd_report)

    i = sub.add_parser("ir", help="the inferred IR")
    i.add_argument("spec", metavar="SPEC")
    i.add_argument("--json", action="store_true", required=True, help="(the only format)")
    i.add_argument("--indent", action="store_true", help="pretty-print")
    i.set_defaults(func=cmd_ir)

    b = sub.add_parser("build", help="generate Keras and/or PyTorch model source")
    b.add_argument("specs", nargs="*", metavar="SPEC")
    b.add_argument("--backend", choices=("keras", "torch", "all"), default="all")
    b.add_argument("-o", "--output", metavar="DIR", help="output folder "
                   "(default generated/<backend>/)")
    b.add_argument("--all", action="store_true", help="every spec in specs/")
    b.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a generated file is missing or stale")
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(func=cmd_build)

    e = sub.add_parser("equiv", help="check that the Keras and PyTorch builds agree")
    e.add_argument("spec", metavar="SPEC")
    e.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    e.add_argument("--batch", type=int, default=2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--direction", choices=("keras2torch", "torch2keras"),
                   default="keras2torch")
    e.add_argument("--nodes", action="store_true", help="compare every node; report the "
                   "first that diverges")
    e.set_defaults(func=cmd_equiv)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `archc` command line.

    archc check SPEC...                 compile, report errors, print a one-line summary
    archc report SPEC [--json|--markdown]
    archc ir SPEC --json                the inferred IR as JSON

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

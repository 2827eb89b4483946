"""The `archc` command line.

    archc check SPEC...                 compile, report errors, print a one-line summary
    archc report SPEC [--json|--markdown]
    archc ir SPEC --json                the inferred IR as JSON
    archc build SPEC... [--backend keras|torch|all] [-o DIR]
    archc build --all [--check]         every spec in specs/, every backend
    archc equiv SPEC [--dtype ...] [--direction ...] [--nodes]
                                        Keras and PyTorch builds compute the same function
    archc train SPEC --backend keras|torch --data SET [...]
    archc evaluate SPEC --weights FILE --data SET [--confusion]

Exit status: 0 success, 1 a spec has errors (or the data or a run failed), 2 the
command line is wrong, 3 a training loss became non-finite, 130 / 143 a run was
stopped by SIGINT / SIGTERM (its checkpoint saved).
check, report, ir and build import no deep-learning framework.
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


TRAINERS = {"torch": ("backends.pytorch.train", "TorchTrainer"),
            "keras": ("backends.keras.train", "KerasTrainer")}


def _trainer(backend: str, model, settings):
    import importlib

    module, cls = TRAINERS[backend]
    return getattr(importlib.import_module(module), cls)(model, settings)


def _training_overrides(args) -> dict | None:
    """The command line's training settings, validated as a `train { }` section is."""
    from archc.diagnostics import SpecError
    from archc.training import parse_settings

    given = {"optimizer": args.optimizer, "schedule": args.schedule}
    for key in ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "augment"):
        value = getattr(args, key, None)
        if value is not None:  # numbers and flags are written back as the spec would
            given[key] = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    try:
        return parse_settings({k: v for k, v in given.items() if v is not None},
                              origin="<command line>")
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        return None


def _load_data(args, model, seed: int):
    from archc import data as D

    classes = model.output_shape[-1]
    dataset = D.load(args.data, args.data_dir, seed=seed, shape=model.input_shape,
                     classes=classes)
    return D.fit_to_spec(dataset, model.input_shape, classes, resize=args.resize)


def cmd_train(args) -> int:
    model = _compile(args.spec, False)
    if model is None:
        return 1
    overrides = _training_overrides(args)
    if overrides is None:
        return 2
    from archc import runner
    from archc.data import DataError

    settings = runner.resolve(
        model, args.backend, args.data, overrides, data_dir=args.data_dir, resize=args.resize,
        limit=args.limit, seed=args.seed, device=args.device, precision=args.precision,
        compile=args.compile)
    out = args.out or os.path.join("runs", f"{model.name}-{args.backend}-{args.data}")
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        dataset = _load_data(args, model, args.seed)
        trainer = _trainer(args.backend, model, settings)
    except (DataError, runner.RunError) as e:
        print(f"archc train: {e}", file=sys.stderr)
        return 1
    if trainer.rank == 0:
        say(f"archc train {args.spec} -> {out}\nsettings (command line > spec > default):\n"
            f"{settings.describe()}\ndata: {dataset.describe()}"
            + "".join(f"\n  {n}" for n in dataset.notes)
            + f"\nengine: {trainer.describe()}")
    try:
        with runner.StopFlag() as stop:
            result = runner.train(model, settings, dataset, trainer, out, resume=args.resume,
                                  log=say, stop=stop, progress=not args.quiet)
    except runner.RunError as e:
        print(f"archc train: {e}", file=sys.stderr)
        return 1
    finally:
        trainer.close()
    if result.status == 0 and result.history and trainer.rank == 0:
        best = max(result.history, key=lambda h: h["val_accuracy"])
        last = result.history[-1]
        print(f"{model.name} on {args.data} ({args.backend}): val_accuracy "
              f"{last['val_accuracy']:.4f} after {len(result.history)} epochs "
              f"(best {best['val_accuracy']:.4f} at epoch {best['epoch'] + 1}); run in {out}")
    return result.status


def cmd_evaluate(args) -> int:
    model = _compile(args.spec, False)
    if model is None:
        return 1
    import json

    from archc import runner
    from archc.data import DataError
    from backends.transfer import TransferError, load_weights

    path = args.weights
    if os.path.isdir(path):
        path = os.path.join(path, "weights.npz")
    try:
        weights = load_weights(path)
    except (OSError, ValueError) as e:
        print(f"archc evaluate: cannot read {path}: {e} (expected archc's weights.npz, "
              f"written by `archc train` or backends.transfer.save_weights)", file=sys.stderr)
        return 1
    settings = runner.resolve(model, args.backend, args.data, {"batch_size": args.batch_size},
                              data_dir=args.data_dir, resize=args.resize, device=args.device,
                              precision=args.precision)
    try:
        dataset = _load_data(args, model, args.seed)
        trainer = _trainer(args.backend, model, settings)
        trainer.set_weights(weights)
    except (DataError, runner.RunError, TransferError) as e:
        print(f"archc evaluate: {e}", file=sys.stderr)
        return 1
    r = runner.evaluate(model, trainer, dataset, settings.batch_size)
    trainer.close()
    if args.json:
        out = {k: v for k, v in r.items() if k != "confusion"}
        if args.confusion:
            out["confusion"] = r["confusion"].tolist()
            out["classes"] = list(dataset.classes)
        print(json.dumps(out, indent=1))
        return 0
    print(f"{model.name} on {dataset.name} test set ({r['examples']:,} examples, "
          f"{args.backend}): loss {r['loss']:.4f}  top-1 {r['accuracy']:.4f}  "
          f"top-5 {r['top5']:.4f}")
    if args.confusion:
        print(runner.render_confusion(r["confusion"], dataset.classes))
    return 0


def _data_options(p) -> None:
    from archc.data import NAMES

    p.add_argument("--data", required=True, choices=NAMES)
    p.add_argument("--data-dir", metavar="DIR", help="where the data files are (also searched: "
                   "<DIR>/<set>/ and Keras's cache, ~/.keras/datasets)")
    p.add_argument("--resize", action="store_true", help="resize images to the spec's input "
                   "(bilinear) and convert grey <-> colour")
    p.add_argument("--seed", type=int, default=0, help="initial weights, data order, "
                   "augmentation and rendered data sets (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 mixed precision on a GPU that has it, else fp32")


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


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

    t = sub.add_parser("train", help="train a spec's model on a data set (either backend)")
    t.add_argument("spec", metavar="SPEC")
    t.add_argument("--backend", choices=tuple(TRAINERS), required=True)
    _data_options(t)
    t.add_argument("--epochs", type=_positive(int))
    t.add_argument("--batch-size", type=_positive(int), dest="batch_size")
    t.add_argument("--lr", type=_positive(float), help="initial learning rate")
    t.add_argument("--optimizer", metavar="OPT", help='as in a train section: "adam", '
                   '"sgd(momentum=0.9, nesterov=true)", "rmsprop", "adamw"')
    t.add_argument("--schedule", metavar="SCHED", help='as in a train section: "constant", '
                   '"piecewise(boundaries=[3, 6], values=[0.01, 0.001, 0.0001])", '
                   '"plateau(factor=0.1, patience=5)", "step(rate=0.96, every=8)", '
                   '"cosine", "onecycle(max_lr=0.1)"')
    t.add_argument("--weight-decay", type=float, dest="weight_decay",
                   help="L2 on conv and dense kernels (gradient weight_decay * w)")
    t.add_argument("--label-smoothing", type=float, dest="label_smoothing")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="CIFAR augmentation: pad 4, random crop, random horizontal flip")
    t.add_argument("--limit", type=_positive(int), metavar="N",
                   help="train on the first N training examples only")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (torch)")
    t.add_argument("--out", metavar="DIR",
                   help="run folder (default runs/<model>-<backend>-<data>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser("evaluate", help="loss, top-1 and top-5 accuracy of saved weights")
    v.add_argument("spec", metavar="SPEC")
    v.add_argument("--weights", required=True, metavar="FILE",
                   help="archc weights.npz (or a run folder holding one)")
    v.add_argument("--backend", choices=tuple(TRAINERS), default="torch")
    _data_options(v)
    v.add_argument("--batch-size", type=_positive(int), dest="batch_size", default=256)
    v.add_argument("--confusion", action="store_true", help="print the confusion matrix")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_evaluate)
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

"""The `archc` command line.

    archc check SPEC...                 compile, report errors, print a one-line summary
    archc report SPEC [--json|--markdown|--html FILE] [--depth N] [--input HxWxC]
                      [--batch N] [--dtype ...] [--optimizer ...]
    archc ir SPEC [--indent]            the inferred IR as JSON
    archc diagram SPEC -o FILE.svg|FILE.png [--depth N]
                                        a diagram of the graph (PNG: the diagram extra)
    archc fmt FILE... [--check] [--diff]  rewrite specs as canonical .cnn text (`-`: stdin)
    archc build SPEC... [--backend keras|torch|onnx|all] [-o DIR]
                        [--weights FILE] [--opset N] [--dtype float32|float64]   (onnx)
    archc build --all [--check]         every spec in specs/, every source backend
    archc import SOURCE -o SPEC.cnn [--weights OUT.npz] [--input HxWxC] [--check]
                                        a .keras file, keras.applications.NAME or
                                        module:callable as a spec and its weights
    archc equiv SPEC [--dtype ...] [--direction ...] [--nodes] [--against onnx]
                                        Keras and PyTorch builds (and ONNX in onnxruntime)
                                        compute the same function
    archc train SPEC --backend keras|torch --data SET [...]
    archc evaluate SPEC --weights FILE --data SET [--confusion]

Exit status: 0 success, 1 a spec has errors (or the data or a run failed), 2 the
command line is wrong, 3 a training loss became non-finite, 130 / 143 a run was
stopped by SIGINT / SIGTERM (its checkpoint saved).
check, report, ir, build and diagram (SVG) need only archc's own dependencies
(lark, pydantic, jinja2): NumPy, the frameworks and Pillow are imported inside the
commands that need them, and a missing one is named with the extra to install
(archc/extras.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from archc import __version__
from archc.train import TRAINERS

# pydantic looks for plugins through every installed distribution's entry points
# when its first model is built: tens of milliseconds beside tensorflow and torch.
# archc's own command line uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _compile(path: str, json_errors: bool, library_ok: bool = False, input_shape=None):
    from archc.diagnostics import SpecError
    from archc.pipeline import check_spec, compile_spec

    try:
        if library_ok:
            return check_spec(path)
        return compile_spec(path, input_shape=input_shape)
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
            print(
                f"ok  {path}: {model.name}, {len(model.nodes) - 1} layers, "
                f"{model.params:,} params, output {'x'.join(map(str, model.output_shape))}"
            )
    return 1 if failed else 0


def cmd_report(args) -> int:
    from archc import report

    if args.json and args.depth is not None:
        print(
            "archc report: --depth collapses the text and Markdown tables; --json lists "
            "every node (with its scope): leave out one of them",
            file=sys.stderr,
        )
        return 2
    model = _compile(args.spec, args.json, input_shape=args.input)
    if model is None:
        if args.input and not args.json:
            size = " x ".join(map(str, args.input))
            print(f"(compiled at --input {size}, not the spec's input size)", file=sys.stderr)
        return 1
    choice = report.memory_choice(model, args.batch, args.dtype, args.optimizer)
    if args.html:
        from archc import html_report
        from archc.train.files import write_text

        sources = {}
        for path in (model.source, *html_report.included_files(model)):
            try:
                with open(path, encoding="utf-8") as f:
                    sources[path] = f.read()
            except OSError as e:
                print(f"error: cannot read {path}: {e.strerror}", file=sys.stderr)
                return 1
        depth = 0 if args.depth is None else args.depth  # the page folds the rest
        page = html_report.page(model, sources.pop(model.source), sources, choice, depth)
        try:
            write_text(args.html, page)  # atomically: no half-written page
        except OSError as e:
            print(
                f"error: cannot write {args.html}: {e.strerror}\n"
                "hint: the folder must exist and be writable",
                file=sys.stderr,
            )
            return 1
        print(f"wrote {args.html}")
    elif args.json:
        print(report.as_json(model, choice))
    elif args.markdown:
        print(report.markdown(model, args.depth, choice))
    else:
        print(report.text(model, args.depth, choice))
    return 0


def _input_size(text: str) -> tuple[int, ...]:
    """`299x299x3`, `299*299*3` (H x W x C) or `784` (a vector), for --input."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) not in (1, 3) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an input size: write H x W x C as 299x299x3 (or 299*299*3), "
            "or a vector's length"
        )
    return tuple(int(p) for p in parts)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _depth(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a depth (0, 1, 2, ...)")
    return int(text)


def cmd_ir(args) -> int:
    model = _compile(args.spec, True)
    if model is None:
        return 1
    print(model.model_dump_json(indent=2 if args.indent else None))
    return 0


DIAGRAM_SUFFIXES = (".svg", ".png")


def cmd_diagram(args) -> int:
    from archc import diagram

    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in DIAGRAM_SUFFIXES:
        print(
            f"archc diagram: -o {args.output}: the file's name must end in .svg or .png "
            f"(it says which to write)",
            file=sys.stderr,
        )
        return 2
    model = _compile(args.spec, False)
    if model is None:
        return 1
    lay = diagram.layout(model, args.depth)
    try:
        data = diagram.render_png(lay) if suffix == ".png" else diagram.render_svg(lay).encode()
    except diagram.TooLarge as e:
        print(f"archc diagram: {args.spec}: {e}", file=sys.stderr)
        return 1
    try:
        with open(args.output, "wb") as f:
            f.write(data)
    except OSError as e:
        print(f"archc diagram: cannot write {args.output}: {e.strerror}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {args.output}  ({len(model.nodes)} nodes, {lay.width} x {lay.height} px)")
    return 0


def cmd_fmt(args) -> int:
    """Each file formatted (archc/language/format.py): rewritten in place, or with
    --check / --diff only named / shown. A file with errors is left as it is."""
    import difflib

    from archc.diagnostics import Diagnostics, Sources, SpecError
    from archc.language.format import format_text
    from archc.language.parser import decode_source, read_source

    failed = changed = 0
    for path in args.files:
        name = "<stdin>" if path == "-" else path
        try:
            if path == "-":
                text = decode_source(sys.stdin.buffer.read(), name, Diagnostics(Sources()))
            else:
                text = read_source(path, Diagnostics(Sources()))
            new = format_text(text, name)
        except SpecError as e:
            print(e.render(), file=sys.stderr)
            failed += 1
            continue
        if args.diff and new != text:
            for line in difflib.unified_diff(
                text.splitlines(keepends=True), new.splitlines(keepends=True), name, name
            ):
                end = "" if line.endswith("\n") else "\n\\ No newline at end of file\n"
                sys.stdout.write(line + end)
        if args.check or args.diff:
            if new != text:
                changed += 1
                if args.check:
                    print(f"would reformat {name}")
        elif path == "-":
            sys.stdout.write(new)
        elif new != text:
            try:
                _replace_file(path, new)
            except OSError as e:
                print(f"archc: cannot write {path}: {e.strerror or e}", file=sys.stderr)
                failed += 1
                continue
            print(f"reformatted {path}", file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0


def _replace_file(path: str, text: str) -> None:
    """Write `text` to `path` atomically (archc/train/files.py), keeping the file's
    mode; a link's target is the file replaced."""
    import stat

    from archc.train.files import atomic_write

    path = os.path.realpath(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)

    atomic_write(path, write)


def _hwc(text: str) -> tuple[int, int, int]:
    """An image input size for `archc import --input` (H x W x C only)."""
    size = _input_size(text)
    if len(size) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxWxC (e.g. 224x224x3)")
    return size


def cmd_import(args) -> int:
    from archc import extras, porting
    from backends.importing import ImportFailure

    # a module:callable source imports its framework itself: TensorFlow, where it is
    # installed, is imported first and quietly (its start-up lines come from C++)
    if not args.verbose and ":" in args.source and not extras.missing(["tensorflow"]):
        extras.import_framework("tensorflow")

    try:
        ported = porting.port(
            args.source,
            input_hwc=args.input,
            name=args.name,
            source_weights=args.source_weights,
            spec_path=args.output,
        )
        result = porting.check(ported) if args.check else None
    except ImportFailure as e:
        print(e.render(), file=sys.stderr)
        return 1
    if result is not None:
        from archc import equiv

        print(equiv.report(ported.model, result))
        if not result.ok:
            print(f"error: the check failed: nothing written to {args.output}", file=sys.stderr)
            return 1
    porting.write(ported, args.output, args.weights)
    m = ported.model
    print(
        f"imported {args.source}: {len(m.nodes) - 1} layers, {m.params:,} params "
        f"-> {args.output}" + (f", weights -> {args.weights}" if args.weights else "")
    )
    return 0


# `archc build` options some backends take (the registry says which: Backend.options)
BUILD_OPTIONS = ("weights", "opset", "dtype")


def cmd_build(args) -> int:
    import glob

    from archc.diagnostics import SpecError
    from archc.pipeline import check_spec, compile_spec
    from backends import registry
    from backends.common import BackendError

    specs = list(args.specs)
    if args.all:
        if not os.path.isdir("specs"):
            print(
                f"archc build --all: there is no specs/ folder in {os.getcwd()}; run it in "
                f"the folder that holds specs/ (the project's root), or name the SPEC "
                f"files",
                file=sys.stderr,
            )
            return 2
        found = sorted(p for p in glob.glob(os.path.join("specs", "*.cnn")))
        if not found:
            print(
                f"archc build --all: specs/ in {os.getcwd()} holds no .cnn files", file=sys.stderr
            )
            return 2
        specs += found
    if not specs:
        print("archc build: name a SPEC or use --all", file=sys.stderr)
        return 2
    backends = registry.selected(args.backend)
    given = {k: getattr(args, k) for k in BUILD_OPTIONS if getattr(args, k) is not None}
    for option in given:
        takers = [b.name for b in backends if option in b.options]
        if not takers:
            named = [b.name for b in registry.BACKENDS if option in b.options]
            print(
                f"archc build: --{option} applies to the {', '.join(named)} backend "
                f"(name it with --backend)",
                file=sys.stderr,
            )
            return 2
    out_dirs = {b.name: b.out_dir(args.output, len(backends) > 1) for b in backends}
    failed = 0
    expected: dict[str, set[str]] = {b.name: set() for b in backends}
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
            out_dir = out_dirs[backend.name]
            try:
                options = {k: v for k, v in given.items() if k in backend.options}
                data = backend.generate(model, **options)
            except BackendError as e:
                print(f"error: {path}: {e}", file=sys.stderr)
                failed += 1
                continue
            target = backend.target(out_dir, model)
            if target in expected[backend.name]:
                print(
                    f"error: {path}: another spec already generates {target} "
                    f"(model names must be unique)",
                    file=sys.stderr,
                )
                failed += 1
                continue
            expected[backend.name].add(target)
            if args.check:
                try:
                    with open(target, "rb") as f:
                        current = f.read()
                except OSError:
                    current = None
                if current != data:
                    stale.append(target)
                continue
            try:
                backend.write(out_dir, model, data)
            except (BackendError, OSError) as e:
                print(f"error: {e}", file=sys.stderr)
                failed += 1
                continue
            if not args.quiet:
                print(f"wrote {target}  ({backend.entry_point(model)})")
    if args.check:
        if args.all:
            for backend in backends:
                pattern = os.path.join(out_dirs[backend.name], "*" + backend.suffix)
                for f in sorted(glob.glob(pattern)):
                    if f not in expected[backend.name]:
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

    if args.against == "onnx":
        given = [f"--{k}" for k in ("dtype", "direction") if getattr(args, k) is not None]
        if given:
            print(
                f"archc equiv: {' and '.join(given)} {'does' if len(given) == 1 else 'do'} "
                "not apply with --against onnx: "
                "the builds are float64 and get the same weights; onnxruntime runs in "
                "float64 where its kernels allow, else float32",
                file=sys.stderr,
            )
            return 2
        try:
            results = equiv.check_onnx(model, batch=args.batch, seed=args.seed, nodes=args.nodes)
        except (BackendError, TransferError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print("\n".join(equiv.report(model, r) for r in results))
        return 0 if all(r.ok for r in results) else 1
    try:
        result = equiv.check(
            model,
            dtype=args.dtype or "float64",
            batch=args.batch,
            seed=args.seed,
            direction=args.direction or "keras2torch",
            nodes=args.nodes,
        )
    except (BackendError, TransferError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(equiv.report(model, result))
    return 0 if result.ok else 1


def _training_overrides(args) -> dict | None:
    """The command line's training settings, validated as a `train { }` section is."""
    from archc.diagnostics import SpecError
    from archc.language.train_section import parse_settings

    given = {
        key: getattr(args, key, None)
        for key in (
            "optimizer",
            "schedule",
            "epochs",
            "batch_size",
            "lr",
            "weight_decay",
            "label_smoothing",
        )
    }  # the text as typed, so that an error quotes it
    if args.augment is not None:
        given["augment"] = "true" if args.augment else "false"
    try:
        return parse_settings({k: v for k, v in given.items() if v is not None})
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        return None


def _load_data(args, model, seed: int):
    from archc import data as D

    classes = model.output_shape[-1]
    dataset = D.load(args.data, args.data_dir, seed=seed, shape=model.input_shape, classes=classes)
    return D.fit_to_spec(dataset, model.input_shape, classes, resize=args.resize)


def cmd_train(args) -> int:
    model = _compile(args.spec, False)
    if model is None:
        return 1
    overrides = args.overrides
    from archc.data import DataError
    from archc.train import make_trainer
    from archc.train.errors import RunError
    from archc.train.loop import train
    from archc.train.recipe import RecipeError
    from archc.train.settings import resolve
    from archc.train.signals import StopFlag

    try:
        settings = resolve(
            model,
            args.backend,
            args.data,
            overrides,
            data_dir=args.data_dir,
            resize=args.resize,
            limit=args.limit,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
            compile=args.compile,
        )
    except RecipeError as e:
        print(f"archc train: {e}", file=sys.stderr)
        return 1
    out = args.out or os.path.join("runs", f"{model.name}-{args.backend}-{args.data}")
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        dataset = _load_data(args, model, args.seed)
        trainer = make_trainer(args.backend, model, settings)
    except (DataError, RunError) as e:
        print(f"archc train: {e}", file=sys.stderr)
        return 1
    if trainer.rank == 0:
        say(
            f"archc train {args.spec} -> {out}\nsettings (command line > spec > default):\n"
            f"{settings.describe()}\ndata: {dataset.describe()}"
            + "".join(f"\n  {n}" for n in dataset.notes)
            + f"\nengine: {trainer.describe()}"
        )
    try:
        with StopFlag() as stop:
            result = train(
                model,
                settings,
                dataset,
                trainer,
                out,
                resume=args.resume,
                log=say,
                stop=stop,
                progress=not args.quiet,
                alert=lambda s: print(s, file=sys.stderr, flush=True),
            )
    except RunError as e:
        print(f"archc train: {e}", file=sys.stderr)
        return 1
    finally:
        trainer.close()
    if result.status == 0 and result.history and trainer.rank == 0:
        best = max(result.history, key=lambda h: h["val_accuracy"])
        last = result.history[-1]
        print(
            f"{model.name} on {args.data} ({args.backend}): val_accuracy "
            f"{last['val_accuracy']:.4f} after {len(result.history)} epochs "
            f"(best {best['val_accuracy']:.4f} at epoch {best['epoch']}); run in {out}"
        )
    return result.status


def cmd_evaluate(args) -> int:
    model = _compile(args.spec, False)
    if model is None:
        return 1
    import json

    from archc.data import DataError
    from archc.train import make_trainer
    from archc.train.checkpoints import checkpoint_backend, load_checkpoint_weights
    from archc.train.errors import RunError
    from archc.train.metrics import evaluate, render_confusion
    from archc.train.recipe import RecipeError
    from archc.train.settings import resolve
    from backends.transfer import TransferError, load_weights

    try:
        settings = resolve(
            model,
            args.backend,
            args.data,
            {"batch_size": args.batch_size},
            data_dir=args.data_dir,
            resize=args.resize,
            device=args.device,
            precision=args.precision,
        )
    except RecipeError as e:
        print(f"archc evaluate: {e}", file=sys.stderr)
        return 1
    path = _weights_path(args.weights)
    if path is None:
        return 1
    weights = None
    if not checkpoint_backend(path):
        try:
            weights = load_weights(path)
        except (OSError, ValueError) as e:
            print(
                f"archc evaluate: cannot read {path}: {e} (expected a checkpoint or archc's "
                f"weights .npz, both written by `archc train`)",
                file=sys.stderr,
            )
            return 1
    try:
        dataset = _load_data(args, model, args.seed)
        trainer = make_trainer(args.backend, model, settings)
        if weights is None:
            load_checkpoint_weights(
                path, model, trainer, lambda b: make_trainer(b, model, settings)
            )
        else:
            trainer.set_weights(weights)
    except (DataError, RunError, TransferError) as e:
        print(f"archc evaluate: {e}", file=sys.stderr)
        return 1
    r = evaluate(model, trainer, dataset, settings.batch_size)
    trainer.close()
    if args.json:
        out = {k: v for k, v in r.items() if k != "confusion"}
        if args.confusion:
            out["confusion"] = r["confusion"].tolist()
            out["classes"] = list(dataset.classes)
        print(json.dumps(out, indent=1))
        return 0
    print(f"weights: {path}")
    print(
        f"{model.name} on {dataset.name} test set ({r['examples']:,} examples, "
        f"{args.backend}): loss {r['loss']:.4f}  top-1 {r['accuracy']:.4f}  "
        f"top-5 {r['top5']:.4f}"
    )
    if args.confusion:
        print(render_confusion(r["confusion"], dataset.classes))
    return 0


def _weights_path(given: str) -> str | None:
    """--weights: a file, or a run folder (its best epoch's weights)."""
    from archc.train.checkpoints import BEST_WEIGHTS

    if not os.path.isdir(given):
        return given
    path = os.path.join(given, BEST_WEIGHTS)
    if os.path.isfile(path):
        return path
    print(
        f"archc evaluate: {given} holds no {BEST_WEIGHTS}; name a weights file or a "
        f"checkpoint (e.g. {os.path.join(given, 'checkpoints', 'last.ckpt')})",
        file=sys.stderr,
    )
    return None


def _data_options(p) -> None:
    from archc.data.names import NAMES

    p.add_argument("--data", required=True, choices=NAMES, help="the data set (required)")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        type=_existing_dir,
        help="where the data files are; also searched: <DIR>/<set>/ and Keras's "
        "cache, ~/.keras/datasets (default: only Keras's cache)",
    )
    p.add_argument(
        "--resize",
        action="store_true",
        help="resize images to the spec's input (bilinear) and convert grey <-> colour",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="initial weights, data order, augmentation and rendered data sets",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: a GPU if there is one, else the CPU",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 mixed precision on a GPU that has it, else fp32",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="let the frameworks print their start-up and log lines",
    )


def _existing_dir(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"{text}: no such folder" if not os.path.exists(text) else f"{text}: not a folder"
        )
    return text


def _number(
    kind,
    *,
    positive: bool = False,
    low: int | None = None,
    high: int | None = None,
    as_text: bool = False,
):
    """An argparse type: a finite number of `kind` (int or float), positive or in
    [low, high] where asked, else argparse's usage error (exit status 2). With
    `as_text` the text itself is returned: training settings are then checked with
    the spec's rules (archc/language/train_section.py), whose errors quote them as typed."""
    whole = kind is int

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            if whole and text.strip().lstrip("+-").isdigit():  # past int()'s digit limit
                raise argparse.ArgumentTypeError(
                    f"too large a number ({len(text)} digits)"
                ) from None
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if whole else 'a number'}, got {text}"
            ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        if low is not None and high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return text if as_text else value

    return parse


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (unless the text states it) or
    `(required)`; the epilog's examples keep their lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            not action.option_strings
            or action.default is argparse.SUPPRESS
            or "default" in text
            or "required" in text
        ):
            return text
        if action.required:
            return f"{text} (required)"
        default = action.default
        if default is None:
            return text  # a test holds every such option to state its default itself
        if isinstance(default, bool):
            default = "on" if default else "off"
        return f"{text} (default: {default})"


def _command(sub, name: str, help: str, examples: str):
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="examples:\n" + examples,
        formatter_class=_HelpFormatter,
    )


SPEC_DEFAULT = "(default: the spec's train section, else {})"


def _build_backends() -> tuple[str, ...]:
    from backends import registry

    return tuple(b.name for b in registry.BACKENDS)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="archc",
        description="Compile .cnn CNN architecture specs.",
        formatter_class=_HelpFormatter,
        epilog="examples:\n  archc check specs/*.cnn\n  archc report specs/vgg16.cnn\n"
        "  archc build specs/vgg16.cnn --backend keras\n"
        "Run `archc COMMAND --help` for a command's options and examples.",
    )
    p.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = _command(
        sub,
        "check",
        "compile specs and report errors",
        "  archc check specs/*.cnn\n  archc check my.cnn --json   # errors as JSON",
    )
    c.add_argument("specs", nargs="+", metavar="SPEC")
    c.add_argument("--json", action="store_true", help="errors as JSON")
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    c.set_defaults(func=cmd_check)

    r = _command(
        sub,
        "report",
        "shapes, parameters, MACs and receptive fields",
        "  archc report specs/vgg16.cnn\n  archc report specs/resnet18.cnn --markdown\n"
        "  archc report specs/resnet152.cnn --depth 1   # blocks inside stages collapsed\n"
        "  archc report specs/inception_v3.cnn --input 224x224x3 --batch 64 --dtype bfloat16\n"
        "  archc report specs/resnet18.cnn --html resnet18.html",
    )
    r.add_argument("spec", metavar="SPEC")
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="as JSON (default: a text table)")
    fmt.add_argument(
        "--markdown", action="store_true", help="as a Markdown table (default: a text table)"
    )
    fmt.add_argument(
        "--html",
        metavar="FILE",
        help="write one self-contained HTML page to FILE: diagram, table with foldable "
        "blocks (those nested deeper than --depth start folded; default there: 0), "
        "per-layer bars, the source linked to the rows (default: a text table)",
    )
    r.add_argument(
        "--depth",
        type=_depth,
        metavar="N",
        help="collapse blocks nested deeper than N to their header row (0: top-level rows "
        "only; default: every row)",
    )
    r.add_argument(
        "--input",
        type=_input_size,
        metavar="HxWxC",
        help="compile the spec at this input size instead of its `input` line's "
        "(299x299x3 or 299*299*3; default: the spec's)",
    )
    r.add_argument(
        "--batch",
        type=_positive,
        metavar="N",
        help="batch size of the memory figures " + SPEC_DEFAULT.format("1"),
    )
    r.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        help="precision of the memory figures; bfloat16 and float16 are mixed precision "
        "with float32 master weights and optimizer state (default: float32)",
    )
    r.add_argument(
        "--optimizer",
        choices=("sgd", "sgd_momentum", "adam", "adamw", "rmsprop"),
        help="optimizer whose state the memory figures count " + SPEC_DEFAULT.format("adam"),
    )
    r.set_defaults(func=cmd_report)

    i = _command(
        sub,
        "ir",
        "the inferred IR, as JSON",
        "  archc ir specs/resnet50.cnn --indent > resnet50.json",
    )
    i.add_argument("spec", metavar="SPEC")
    i.add_argument(
        "--json",
        action="store_true",
        help="JSON, the only format (accepted for older scripts; default: JSON)",
    )
    i.add_argument("--indent", action="store_true", help="pretty-print")
    i.set_defaults(func=cmd_ir)

    g = _command(
        sub,
        "diagram",
        "draw the graph as SVG or PNG: branches side by side, blocks framed, shapes on edges",
        "  archc diagram specs/resnet18.cnn -o resnet18.svg\n"
        "  archc diagram specs/resnet152.cnn -o resnet152.png --depth 1   # blocks in blocks "
        "as one box",
    )
    g.add_argument("spec", metavar="SPEC")
    g.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the file to write: .svg, or .png (needs Pillow: the diagram extra)",
    )
    g.add_argument(
        "--depth",
        type=_depth,
        metavar="N",
        help="draw blocks nested N deep or deeper as one box each (0: every block one box; "
        "default: every block open)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    g.set_defaults(func=cmd_diagram)

    f = _command(
        sub,
        "fmt",
        "rewrite specs as canonical .cnn text (layout only: tokens and comments as written)",
        "  archc fmt my.cnn            # rewritten in place\n"
        "  archc fmt --check specs/*.cnn   # CI: exit 1 and name the files that would change\n"
        "  archc fmt --diff my.cnn     # the changes as a unified diff; nothing written\n"
        "  archc fmt - < my.cnn        # stdin to stdout",
    )
    f.add_argument("files", nargs="+", metavar="FILE", help="spec files; `-`: stdin to stdout")
    f.add_argument(
        "--check",
        action="store_true",
        help="write nothing; name the files that would change, exit 1 if any would",
    )
    f.add_argument(
        "--diff", action="store_true", help="write nothing; print the changes as a unified diff"
    )
    f.set_defaults(func=cmd_fmt)
    im = _command(
        sub,
        "import",
        "bring a Keras or PyTorch model in as a spec and its weights, verified",
        "  archc import model.keras -o model.cnn --weights model.npz --check\n"
        "  archc import keras.applications.ResNet50 --input 64x64x3 -o resnet50.cnn\n"
        "  archc import nets.py:build_unet --input 64x64x1 -o unet.cnn --weights unet.npz",
    )
    im.add_argument(
        "source",
        metavar="SOURCE",
        help="a .keras file, keras.applications.NAME, or module:callable (a module name "
        "or path/to/file.py; called without arguments, it returns a keras.Model or a "
        "torch nn.Module)",
    )
    im.add_argument("-o", "--output", required=True, metavar="SPEC.cnn", help="the spec to write")
    im.add_argument(
        "--weights",
        metavar="OUT.npz",
        help="write the source's weights keyed by the spec's node names (default: none)",
    )
    im.add_argument(
        "--input",
        type=_hwc,
        metavar="HxWxC",
        help="the input size: a PyTorch module's (required), or a keras.applications "
        "model's input_shape (default: the application's own)",
    )
    im.add_argument(
        "--source-weights",
        metavar="FILE",
        help="a Keras weights file to load into keras.applications.NAME (default: "
        "weights=None, Keras's initial values)",
    )
    im.add_argument("--name", help="the spec's model name (default: the source model's)")
    im.add_argument(
        "--check",
        action="store_true",
        help="run the source model and the spec built in the other framework, float64, "
        "with the weights, on the same random input; print every node's divergence as "
        "`archc equiv --nodes` does; write nothing and exit 1 when they differ",
    )
    im.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="let the frameworks print their start-up and log lines",
    )
    im.set_defaults(func=cmd_import)

    b = _command(
        sub,
        "build",
        "generate Keras and/or PyTorch model source, or an ONNX model",
        "  archc build specs/vgg16.cnn --backend keras   # -> generated/keras/vgg16.py\n"
        "  archc build --all --check   # is generated/ up to date?\n"
        "  archc build specs/digits_cnn.cnn --backend onnx --weights runs/digits_cnn-torch-digits"
        "   # -> generated/onnx/digits_cnn.onnx",
    )
    b.add_argument("specs", nargs="*", metavar="SPEC")
    b.add_argument(
        "--backend",
        choices=(*_build_backends(), "all"),
        default="all",
        help="what to write: keras or torch source, or an onnx model (binary, built only "
        "when named); all: the source backends (keras and torch)",
    )
    b.add_argument(
        "-o", "--output", metavar="DIR", help="output folder (default: generated/<backend>/)"
    )
    b.add_argument(
        "--all", action="store_true", help="every spec in specs/ (of the current folder)"
    )
    b.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a generated file is missing or stale",
    )
    b.add_argument(
        "--weights",
        metavar="FILE",
        help="onnx: the weights to store, archc's .npz as `archc train` exports it (or its run "
        "folder); default: seeded random weights, said so in the model's metadata",
    )
    b.add_argument(
        "--opset",
        type=_number(int, low=1, high=1000),
        metavar="N",
        help="onnx: the ONNX opset (default 21)",
    )
    b.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="onnx: the model's float type (default float32)",
    )
    b.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    b.set_defaults(func=cmd_build)

    e = _command(
        sub,
        "equiv",
        "check that the Keras and PyTorch builds (or the ONNX model) agree",
        "  archc equiv specs/resnet18.cnn\n  archc equiv specs/vgg16.cnn --dtype float32 --nodes\n"
        "  archc equiv specs/resnet18.cnn --against onnx --nodes",
    )
    e.add_argument("spec", metavar="SPEC")
    e.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        help="precision of both builds (default float64, tolerance 1e-9; float32: 1e-4)",
    )
    e.add_argument(
        "--batch",
        type=_number(int, low=2, high=4096),
        default=2,
        metavar="N",
        help="random inputs compared, 2 to 4096: the output must vary between them (default 2)",
    )
    e.add_argument(
        "--seed",
        type=_number(int, low=0, high=2**32 - 1),
        default=0,
        help="seeds the random weights and inputs, 0 to 2**32 - 1 (default 0)",
    )
    e.add_argument(
        "--direction",
        choices=("keras2torch", "torch2keras"),
        help="which build gets the random weights; "
        "the other gets them by node name (default keras2torch)",
    )
    e.add_argument(
        "--nodes",
        action="store_true",
        help="compare every node as well; any "
        "node beyond the tolerance fails the check, the first is named",
    )
    e.add_argument(
        "--against",
        choices=("torch", "onnx"),
        default="torch",
        help="torch: the Keras build against the PyTorch build (default); onnx: the ONNX "
        "model in onnxruntime against the PyTorch and Keras builds (float64 builds, the same "
        "random weights; onnxruntime in float64 where its CPU provider can, else float32 at "
        "1e-5 of the output scale)",
    )
    e.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="let the frameworks print their start-up and log lines",
    )
    e.set_defaults(func=cmd_equiv)

    t = _command(
        sub,
        "train",
        "train a spec's model on a data set (either backend)",
        "  archc train specs/digits_cnn.cnn --backend torch --data digits\n"
        "  archc train specs/resnet18.cnn --backend keras --data cifar10 "
        "--data-dir ~/data --augment\n"
        "  archc train specs/digits_cnn.cnn --backend torch --data digits "
        "--epochs 20 --resume",
    )
    t.add_argument("spec", metavar="SPEC")
    t.add_argument(
        "--backend", choices=tuple(TRAINERS), required=True, help="the framework that trains"
    )
    _data_options(t)
    t.add_argument(
        "--epochs",
        type=_number(int, positive=True, as_text=True),
        metavar="N",
        help="epochs in all " + SPEC_DEFAULT.format(10),
    )
    t.add_argument(
        "--batch-size",
        type=_number(int, positive=True, as_text=True),
        dest="batch_size",
        metavar="N",
        help="examples per step " + SPEC_DEFAULT.format(32),
    )
    t.add_argument(
        "--lr",
        type=_number(float, positive=True, as_text=True),
        metavar="RATE",
        help="initial learning rate " + SPEC_DEFAULT.format("0.01 for sgd, 0.001 for the others"),
    )
    t.add_argument(
        "--optimizer",
        metavar="OPT",
        help='as in a train section: "adam", '
        '"sgd(momentum=0.9, nesterov=true)", "rmsprop", "adamw" ' + SPEC_DEFAULT.format("adam"),
    )
    t.add_argument(
        "--schedule",
        metavar="SCHED",
        help='as in a train section: "constant", '
        '"piecewise(boundaries=[3, 6], values=[0.01, 0.001, 0.0001])", '
        '"plateau(factor=0.1, patience=5)", "step(rate=0.96, every=8)", '
        '"cosine(min_lr=0)", "onecycle(max_lr=0.1)" ' + SPEC_DEFAULT.format("constant"),
    )
    t.add_argument(
        "--weight-decay",
        type=_number(float, as_text=True),
        dest="weight_decay",
        metavar="L2",
        help="L2 on conv and dense kernels (gradient weight_decay * w) " + SPEC_DEFAULT.format(0),
    )
    t.add_argument(
        "--label-smoothing",
        type=_number(float, as_text=True),
        dest="label_smoothing",
        metavar="EPS",
        help="label smoothing of the loss " + SPEC_DEFAULT.format(0),
    )
    t.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="CIFAR augmentation: pad 4, random crop, random horizontal flip "
        + SPEC_DEFAULT.format("off"),
    )
    t.add_argument(
        "--limit",
        type=_number(int, positive=True),
        metavar="N",
        help="train on the first N training examples only (default: all)",
    )
    t.add_argument("--compile", action="store_true", help="torch.compile the model (torch)")
    t.add_argument(
        "--out", metavar="DIR", help="run folder (default: runs/<model>-<backend>-<data>)"
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint; only --epochs, "
        "--device, --data-dir and --compile may differ from the run's",
    )
    t.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress output (errors, warnings and stops are still shown)",
    )
    t.set_defaults(func=cmd_train)

    v = _command(
        sub,
        "evaluate",
        "loss, top-1 and top-5 accuracy of saved weights",
        "  archc evaluate specs/digits_cnn.cnn --weights runs/digits_cnn-torch-digits "
        "--data digits --confusion",
    )
    v.add_argument("spec", metavar="SPEC")
    v.add_argument(
        "--weights",
        required=True,
        metavar="FILE",
        help="weights to evaluate: a run folder (its best epoch's weights-best.npz), "
        "weights-best.npz / weights-last.npz, or a checkpoint such as "
        "RUN/checkpoints/best.ckpt (either backend's)",
    )
    v.add_argument(
        "--backend", choices=tuple(TRAINERS), default="torch", help="the framework that evaluates"
    )
    _data_options(v)
    v.add_argument(
        "--batch-size",
        type=_number(int, positive=True),
        dest="batch_size",
        default=256,
        metavar="N",
        help="examples per step",
    )
    v.add_argument("--confusion", action="store_true", help="print the confusion matrix")
    v.add_argument("--json", action="store_true", help="the results as JSON")
    v.set_defaults(func=cmd_evaluate)
    return p


def _needs(args) -> tuple[str, ...]:
    """The optional packages a command line needs (archc/extras.py names their extras)."""
    from archc.extras import BACKEND_MODULES

    if args.command == "build":
        from backends import registry

        return tuple(dict.fromkeys(m for b in registry.selected(args.backend) for m in b.needs))
    if args.command == "equiv":
        onnx = ("onnx", "onnxruntime") if args.against == "onnx" else ()
        return ("numpy", "tensorflow", "keras", "torch", *onnx)
    if args.command == "diagram":
        return ("PIL",) if args.output.lower().endswith(".png") else ()
    if args.command == "import":  # module:callable imports what it returns (Keras or torch)
        keras_source = args.source.startswith("keras.") or args.source.endswith(".keras")
        keras = ("tensorflow", "keras") if keras_source or args.check else ()
        return ("numpy", *keras, *(("torch",) if args.check else ()))
    if args.command in ("train", "evaluate"):
        from archc.data.names import NEEDS

        return BACKEND_MODULES[args.backend] + NEEDS.get(args.data, ())
    return ()


def main(argv: list[str] | None = None) -> int:
    from archc import extras

    args = make_parser().parse_args(argv)
    if args.command == "train":  # the command line first, before what it needs installed
        args.overrides = _training_overrides(args)
        if args.overrides is None:
            return 2
    try:
        needs = _needs(args)
        extras.require(args.command, needs)
        if "tensorflow" in needs:  # before anything imports it: its start-up lines
            extras.import_framework("tensorflow", verbose=args.verbose)
        return args.func(args)
    except extras.MissingPackage as e:
        print(f"archc: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:  # one a command imports beyond what it declared
        root = (e.name or "").split(".")[0]
        if root not in extras.PACKAGES:
            raise
        print(f"archc: {extras.MissingPackage(args.command, [root])}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

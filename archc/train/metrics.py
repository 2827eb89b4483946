"""Metrics computed here, in NumPy, from each backend's predictions: cross-entropy,
top-1 and top-5 accuracy, the confusion matrix; and the evaluation of a trainer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from archc import data as D
from archc.ir import Model

if TYPE_CHECKING:
    from archc.train.loop import Trainer


def outputs_probabilities(ir: Model) -> bool:
    """Whether the network ends in softmax (the seeds' nets) or gives logits."""
    node = ir.node(ir.output)
    fn = (
        getattr(node, "fn", None)
        if node.kind == "activation"
        else getattr(node, "activation", None)
    )
    return fn == "softmax"


def log_probabilities(outputs: np.ndarray, probabilities: bool) -> np.ndarray:
    out = outputs.astype(np.float64)
    if probabilities:  # Keras's crossentropy on probabilities: normalise, clip to 1e-7
        out = out / out.sum(axis=1, keepdims=True)
        return np.log(np.clip(out, 1e-7, 1 - 1e-7))
    out = out - out.max(axis=1, keepdims=True)
    return out - np.log(np.exp(out).sum(axis=1, keepdims=True))


def classification_metrics(outputs: np.ndarray, y: np.ndarray, probabilities: bool) -> dict:
    """Cross-entropy, top-1 and top-5 accuracy of outputs (N x classes) for labels y."""
    logp = log_probabilities(outputs, probabilities)
    loss = float(-logp[np.arange(len(y)), y].mean())
    k = min(5, outputs.shape[1])
    # the label's place in a stable ranking by score: a tie goes to the lower class
    # index, as argmax (and so Keras's accuracy) resolves it
    label_score = outputs[np.arange(len(y)), y][:, None]
    before = np.arange(outputs.shape[1])[None, :] < y[:, None]
    rank = (outputs > label_score).sum(axis=1) + ((outputs == label_score) & before).sum(axis=1)
    return {"loss": loss, "accuracy": float((rank == 0).mean()), "top5": float((rank < k).mean())}


def confusion_matrix(outputs: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (y, outputs.argmax(axis=1)), 1)
    return m


def render_confusion(m: np.ndarray, names: tuple[str, ...]) -> str:
    names = [n[:10] for n in names]
    w = max(6, max(len(n) for n in names) + 1, len(str(m.max())) + 1)
    head = " " * w + "".join(f"{n:>{w}}" for n in names)
    rows = [f"{n:>{w}}" + "".join(f"{v:>{w}}" for v in row) for n, row in zip(names, m)]
    return "rows: true class, columns: predicted\n" + "\n".join([head] + rows)


def evaluate(ir: Model, trainer: Trainer, dataset: D.Dataset, batch_size: int) -> dict:
    outputs = trainer.predict(dataset.x_test, batch_size)
    result = classification_metrics(outputs, dataset.y_test, outputs_probabilities(ir))
    result["examples"] = len(dataset.y_test)
    result["confusion"] = confusion_matrix(outputs, dataset.y_test, len(dataset.classes))
    return result

"""The PyTorch side of the shared runner (archc/train/loop.py): a plain training loop
over the generated model.

- CPU or CUDA. On CUDA: bf16 autocast where supported, channels-last memory,
  cudnn autotuning, pinned memory and non-blocking copies, the training set kept
  on the GPU when it fits and needs no augmentation, optional torch.compile.
- Several processes through DistributedDataParallel when launched by torchrun
  (RANK / WORLD_SIZE / LOCAL_RANK set): each rank takes its part of every global
  batch, the loss is scaled so that the averaged gradient is the global batch's,
  rank 0 logs and writes checkpoints, and checkpoints hold the bare model's
  state, loadable without DDP.
- Checkpoints are torch.save archives read back with weights_only=True.
"""

from __future__ import annotations

import datetime
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archc.data import as_float
from archc.ir import Model
from archc.train.errors import RunError
from archc.train.metrics import outputs_probabilities
from archc.train.recipe import Recipe, torch_optimizer, torch_weight_decay
from archc.train.settings import Settings
from backends import transfer
from backends.runtime import build_torch

GPU_RESIDENT_LIMIT = 0.25  # at most this share of free GPU memory for the training set


def distributed_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) as torchrun sets them; None outside torchrun.
    Under torchrun the runner always goes through DistributedDataParallel, one
    process included, so a one-GPU launch runs the multi-GPU code path."""
    if "WORLD_SIZE" not in os.environ:
        return None
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ["WORLD_SIZE"]),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RunError("--device cuda: PyTorch sees no CUDA device here")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer, as the generated make_optimizer builds it: one
    parameter group per weight decay, kernels decayed, biases, batch norm and
    PReLU not (archc/train/recipe.py states the translation from Keras)."""
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        groups.setdefault(torch_weight_decay(recipe, name, p.ndim), []).append(p)
    call = torch_optimizer(recipe)
    return getattr(torch.optim, call.cls)(
        [{"params": ps, "weight_decay": decay} for decay, ps in groups.items()], **dict(call.kwargs)
    )


def crossentropy(
    outputs: torch.Tensor, y: torch.Tensor, probabilities: bool, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Per-example cross-entropy with Keras's conventions: logits go through
    log-softmax; probabilities (a softmax head whose logits are not at hand) are
    normalised and clipped to [1e-7, 1 - 1e-7] before the log; smoothing mixes in
    the uniform distribution."""
    outputs = outputs.float()
    if probabilities:
        p = outputs / outputs.sum(dim=1, keepdim=True)
        logp = torch.log(p.clamp(1e-7, 1 - 1e-7))
    else:
        logp = F.log_softmax(outputs, dim=1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    if label_smoothing:
        nll = (1 - label_smoothing) * nll - label_smoothing * logp.mean(dim=1)
    return nll


class TorchTrainer:
    backend = "torch"

    def __init__(self, ir: Model, settings: Settings):
        self.settings = settings
        env = distributed_env()
        self.distributed = env is not None
        self.rank, self.world, local_rank = env or (0, 1, 0)
        self.device = pick_device(settings.device, local_rank)
        self.cuda = self.device.type == "cuda"
        if self.distributed and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.cuda else "gloo")
        if self.cuda:
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(settings.seed)  # the same initial weights on every rank
        self.model = build_torch(ir).to(self.device)
        self.channels_last = self.cuda and len(ir.input_shape) == 3
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if self.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.cuda else None
            )
        if settings.compile:
            self.net = torch.compile(self.net)
        self.optimizer = make_optimizer(self.model, settings)
        self.ir = ir
        self.probabilities = outputs_probabilities(ir)
        # Keras's fit takes a softmax head's loss from the softmax's input, not from
        # the clipped probabilities (a confidently wrong example keeps its gradient):
        # train on the generated model's logits (`logits=True`), predict probabilities
        self.train_logits = self.probabilities and hasattr(self.model, "logits")
        bf16 = self.cuda and torch.cuda.is_bf16_supported()
        if settings.precision == "bf16" and not bf16:
            raise RunError("--precision bf16 needs a CUDA device that supports bfloat16")
        self.amp = bf16 and settings.precision in ("auto", "bf16")
        self.sync_every = 25 if self.cuda else 1  # steps between host syncs (progress, NaN)
        self._resident: tuple | None = None

    def describe(self) -> str:
        parts = [
            f"PyTorch {torch.__version__} on {self.device}"
            + (
                f" ({torch.cuda.get_device_name(self.device)})"
                if self.cuda
                else f" ({torch.get_num_threads()} threads)"
            )
        ]
        if self.amp:
            parts.append("bf16 autocast")
        if self.channels_last:
            parts.append("channels-last")
        if self.settings.compile:
            parts.append("torch.compile")
        if self.distributed:
            parts.append(
                f"DistributedDataParallel x{self.world} ({torch.distributed.get_backend()})"
            )
        return ", ".join(parts)

    # ---- moving data -----------------------------------------------------

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)
        if t.ndim == 4:  # N H W C -> N C H W (a channels-last view: no copy)
            t = t.permute(0, 3, 1, 2)
            if not self.channels_last:
                t = t.contiguous()
        if self.cuda:
            t = t.pin_memory().to(self.device, non_blocking=True)
            if self.channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _gpu_batches(self, data):
        """The training set on the GPU when it fits and is not augmented."""
        if not self.cuda or data.augment:
            return None
        if self._resident is None or self._resident[0] is not data.x:
            free, _ = torch.cuda.mem_get_info(self.device)
            if data.x.nbytes + data.y.nbytes > GPU_RESIDENT_LIMIT * free:
                return None
            self._resident = (
                data.x,
                torch.from_numpy(data.x).to(self.device),
                torch.from_numpy(data.y).to(self.device),
            )
        _, xs, ys = self._resident

        def gen():
            for step, idx, n in data.indices():
                i = torch.from_numpy(idx).to(self.device, non_blocking=True)
                xb = xs[i]
                xb = xb.float() * (1 / 255) if xb.dtype == torch.uint8 else xb
                if xb.ndim == 4:
                    xb = xb.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
                yield step, xb, ys[i], n

        return gen()

    def _batches(self, data):
        gpu = self._gpu_batches(data)
        if gpu is not None:
            yield from gpu
            return
        for step, xb, yb, n in data.batches():
            y = torch.from_numpy(yb)
            if self.cuda:
                y = y.pin_memory().to(self.device, non_blocking=True)
            yield step, self._to_device(xb), y, n

    # ---- training --------------------------------------------------------

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train_epoch(self, data, report, stop) -> None:
        self.net.train()
        if self.train_logits:
            self.model.logits = True
        clipped = self.probabilities and not self.train_logits
        ls = self.settings.label_smoothing
        acc = torch.zeros(4, dtype=torch.float64, device=self.device)
        pending = 0
        last = data.steps - 1
        for step, x, y, n_global in self._batches(data):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.net(x)
            per_example = crossentropy(out, y, clipped, ls)
            # DDP averages gradients over ranks: scale so the result is the global mean
            loss = per_example.sum() * (self.world / n_global)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                acc[0] += per_example.detach().sum()
                acc[1] += (out.detach().argmax(dim=1) == y).sum()
                acc[2] += len(y)
            pending += 1
            if pending == self.sync_every or step == last or stop:
                acc[3] = 1.0 if stop else 0.0
                if self.distributed:
                    torch.distributed.all_reduce(acc)
                values = acc.tolist()
                acc.zero_()
                pending = 0
                if report(step, np.array(values[:3]), values[3] > 0):
                    return

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        self.model.eval()
        if self.train_logits:
            self.model.logits = False
        outs = []
        for s in range(0, len(x), max(batch_size, 256)):
            xb = self._to_device(as_float(x[s : s + max(batch_size, 256)]))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                outs.append(self.model(xb).float().cpu().numpy())
        return np.concatenate(outs)

    # ---- weights and checkpoints ------------------------------------------

    def weights(self) -> dict[str, np.ndarray]:
        return transfer.torch_weights(self.ir, self.model)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        transfer.set_torch_weights(self.ir, self.model, weights)

    def finite(self) -> bool:
        return all(
            bool(torch.isfinite(t).all())
            for t in self.model.state_dict().values()
            if t.is_floating_point()
        )

    def save_checkpoint(self, path: str, meta: dict) -> None:
        torch.save(
            {
                "meta": json.dumps(meta),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": {
                    "cpu": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.cuda else [],
                },
            },
            path,
        )

    def load_checkpoint(self, path: str) -> dict:
        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["cpu"].cpu())
        if self.cuda and ckpt["rng"]["cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])
        return json.loads(ckpt["meta"])

    def close(self) -> None:
        """Leave the process group together: a rank that tears gloo down while
        another still holds its connections can abort the whole job (SIGABRT,
        "terminate called without an active exception"), so every rank waits at a
        barrier first, bounded so that a rank which died cannot hang the others."""
        if not (self.distributed and torch.distributed.is_initialized()):
            return
        try:
            if self.cuda:
                torch.distributed.barrier(device_ids=[self.device.index])
            else:
                torch.distributed.monitored_barrier(timeout=datetime.timedelta(seconds=60))
        except RuntimeError:
            pass  # another rank is gone; tear down alone
        torch.distributed.destroy_process_group()

"""The HF Trainer, set up for personaforge: labelled-positions-only loss, packing collator, callbacks."""

from __future__ import annotations

import os

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
from transformers.integrations import TensorBoardCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from personaforge.config import TrainConfig
from personaforge.train import packed_attention
from personaforge.train.callbacks import InterruptCallback, ProgressFactory, WatchdogCallback
from personaforge.train.collate import PackedCollator, PaddedCollator
from personaforge.train.loss import labelled_loss_sum


class _DropoutLinearFunction(torch.autograd.Function):
    """``linear(dropout(x), weight)`` that keeps only a 1-byte mask for backward.

    On a CPU, ``F.dropout`` keeps a float copy of its noise and LoRA's A projection keeps the dropped input: two
    fp32 copies of the layer input per adapted layer, about half of a LoRA step's activation memory. Here the
    input itself is kept (the frozen layer keeps the same tensor anyway) with a bool mask, and the dropped input
    is recomputed in backward.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
        keep = torch.empty(x.shape, dtype=torch.bool, device=x.device).bernoulli_(1.0 - p)
        scale = 1.0 / (1.0 - p)
        ctx.save_for_backward(x, keep, weight)
        ctx.scale = scale
        return torch.nn.functional.linear(x * keep * scale, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, keep, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ weight) * keep * ctx.scale
        if ctx.needs_input_grad[1]:
            dropped = x * keep * ctx.scale
            grad_weight = grad.reshape(-1, grad.shape[-1]).T @ dropped.reshape(-1, dropped.shape[-1])
        return grad_x, grad_weight, None


class DropoutLinear(torch.nn.Linear):
    """A LoRA A projection with the adapter's dropout folded in (same weights and state-dict keys as nn.Linear)."""

    def __init__(self, linear: torch.nn.Linear, p: float) -> None:
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta")
        self.weight, self.bias, self.p = linear.weight, linear.bias, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lean = (self.training and self.p > 0 and self.bias is None and x.dtype == self.weight.dtype
                and not torch.is_autocast_enabled(x.device.type))
        if lean:
            return _DropoutLinearFunction.apply(x, self.weight, self.p)
        return super().forward(torch.nn.functional.dropout(x, self.p, self.training))


def fold_lora_dropout(model) -> int:
    """Fold every plain LoRA adapter's dropout into its A projection (see DropoutLinear); returns how many."""
    from peft.tuners.lora import LoraLayer

    folded = 0
    for module in model.modules():
        if not isinstance(module, LoraLayer):
            continue
        for name, dropout in list(module.lora_dropout.items()):
            lora_a = module.lora_A[name] if name in module.lora_A else None
            plain = type(lora_a) is torch.nn.Linear and name not in getattr(module, "lora_variant", {})
            if plain and type(dropout) is torch.nn.Dropout and dropout.p > 0:
                module.lora_A[name] = DropoutLinear(lora_a, dropout.p)
                module.lora_dropout[name] = torch.nn.Identity()
                folded += 1
    return folded


class ExampleDataset(torch.utils.data.Dataset):
    def __init__(self, examples) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index):
        return self.examples[index]


class PersonaTrainer(Trainer):
    """Trainer whose loss runs the lm_head only on labelled positions and counts real tokens."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # We normalise by the token count of the whole accumulated step ourselves (num_items_in_batch),
        # so the Trainer must count labels and must not divide by grad_accum again.
        self.model_accepts_loss_kwargs = True
        self.real_tokens = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.real_tokens += int(inputs["real_tokens"])  # tokens of samples, not of padding
        total, count = labelled_loss_sum(model, inputs)
        if num_items_in_batch is not None:
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * self.args.world_size  # DDP averages gradients across ranks
        else:
            loss = total / max(count, 1)
        return (loss, {"loss": loss.detach()}) if return_outputs else loss


def training_arguments(cfg: TrainConfig, output_dir: str, *, device: torch.device, dtype: torch.dtype,
                       has_validation: bool) -> TrainingArguments:
    t = cfg.train
    eval_strategy = "no" if not has_validation else ("steps" if t.eval_every else "epoch")
    save_strategy = "steps" if t.save_every else "epoch"
    early = bool(t.early_stopping_patience and has_validation)
    if early and (eval_strategy, save_strategy) == ("steps", "steps") and t.save_every % t.eval_every:
        save_every = t.eval_every  # best-model tracking needs a checkpoint at every evaluation
    else:
        save_every = t.save_every
    if early and eval_strategy != save_strategy:
        save_strategy, save_every = eval_strategy, t.eval_every
    cpu = device.type == "cpu"
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.lr,
        lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=t.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_every or None,
        save_strategy=save_strategy,
        save_steps=save_every or None,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        # bf16 is autocast over float32 weights on a CPU too (models.Precision): accelerate enters
        # torch.autocast("cpu", bfloat16) around each forward; LoRA parameters and optimizer state stay float32.
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,  # loss scaling for GPUs without bf16 (the original pipeline's RTX 8000)
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        activation_checkpointing=cfg.model.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.model.gradient_checkpointing else None,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        prediction_loss_only=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=not cpu,
        optim="adamw_torch",
    )


def build_trainer(model, tokenizer, train_examples, validation_examples, cfg: TrainConfig, output_dir: str,
                  logs_dir: str, *, device: torch.device, dtype: torch.dtype, progress: ProgressFactory | None = None):
    args = training_arguments(cfg, output_dir, device=device, dtype=dtype, has_validation=bool(validation_examples))
    fold_lora_dropout(model)  # about half the activation memory of a step on a CPU (see DropoutLinear)
    if cfg.train.packing:
        # Flash attention's variable-length kernels and our per-sample sdpa take the batch as one row with no
        # filler; other kernels get a dense block-diagonal mask, so their rows are capped at max_length.
        flash = getattr(model.config, "_attn_implementation", "") == "flash_attention_2"
        split = not flash and packed_attention.enable(model, cfg.data.max_length)
        collator = PackedCollator(None if flash or split else cfg.data.max_length, tokenizer.pad_token_id)
    else:
        collator = PaddedCollator(tokenizer.pad_token_id)
    interrupt = InterruptCallback()
    trainer = PersonaTrainer(
        model=model,
        args=args,
        train_dataset=ExampleDataset(train_examples),
        eval_dataset=ExampleDataset(validation_examples) if validation_examples else None,
        data_collator=collator,
    )
    # The command line's progress bar (cli/progress.py) replaces the Trainer's own printing of every log dict to
    # stdout; without one (a library call) training is quiet.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress is not None:
        trainer.add_callback(progress(lambda: trainer.real_tokens))
    trainer.add_callback(WatchdogCallback(cfg.train.grad_spike_factor))
    trainer.add_callback(interrupt)
    if trainer.is_world_process_zero():
        from torch.utils.tensorboard import SummaryWriter

        trainer.add_callback(TensorBoardCallback(SummaryWriter(log_dir=logs_dir)))
    if args.load_best_model_at_end:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    return trainer, interrupt

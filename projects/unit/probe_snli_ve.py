"""What a trained UniT's encoders hold for the shapes benchmark's SNLI-VE, read out by probes.

    python projects/unit/probe_snli_ve.py save/unit_shapes                     # the main job's run folder
    python projects/unit/probe_snli_ve.py <run> --checkpoint <weights> --steps 3000

The benchmark's SNLI-VE statements about a property no picture shows ("the red circle is made
of wood") are neutral when the picture holds the described object and contradictions when it
does not, so they need one look-up: is the described object there? This tool asks where a model
that does not answer them loses it. It encodes the run's SNLI-VE train and val splits with the
run's own weights (``checkpoints/last`` unless ``--checkpoint``) and fits small probes on the
train split, reporting val accuracy beside the majority answer:

- text [CLS] -> described shape / colour: linear probes on the first text state the decoder
  sees (UniT Eq. 3; the only one with ``keep_only_cls``). A text encoder that does not carry
  the description cannot let the decoder look for it.
- trunk cells + oracle description -> present: the described shape, colour and size given as
  a multi-hot vector (read from the words, not from the model), joined with every feature cell
  of the image backbone (LayerNorm, a 2-layer MLP per cell, max over the picture's cells). It
  asks whether the picture features hold the answer, and after how many samples a reader built
  for the look-up finds it (printed at several points of its training).

Before the probes it breaks the run's own SNLI-VE val accuracy down by the kind of statement
(the benchmark's templates: exists, count, colour, relation, background, unseen property), with
how well the run's logits rank that kind's contradictions above its other label (the area under
the ROC curve of ``logit(contradiction) - logit(other)``; 0.5 is blind). A run that answers a
kind by its template alone scores that kind's majority label and ranks at about 0.5.

Run it from the folder the run was started in: the saved config's data paths are relative to
it. Only the benchmark's hypotheses are parsed (its lexicon); real SNLI-VE has no such structure.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from unimm.config.errors import ConfigError  # noqa: E402
from unimm.benchmark.shapes import lexicon  # noqa: E402

WORDS = {"shape": lexicon.SHAPES, "colour": tuple(lexicon.COLOURS), "size": tuple(lexicon.SIZES)}


def described(text: str) -> dict[str, list[str]]:
    """The shape, colour and size words of a hypothesis, in order (plurals count: "circles")."""
    text = text.lower()
    return {kind: [w for w in words if re.search(rf"\b{w}", text)] for kind, words in WORDS.items()}


def word_class(texts: Sequence[str], kind: str) -> Tensor:
    """Per text, the index of its one ``kind`` word, or ``len(words)`` for none or several."""
    words = WORDS[kind]
    found = (described(t)[kind] for t in texts)
    return torch.tensor([words.index(f[0]) if len(f) == 1 else len(words) for f in found])


def oracle(texts: Sequence[str]) -> Tensor:
    """Multi-hot ``[N, shapes + colours + sizes]`` of the words each text names."""
    vocabulary = [w for words in WORDS.values() for w in words]
    rows = torch.zeros(len(texts), len(vocabulary))
    for i, text in enumerate(texts):
        for words in described(text).values():
            for w in words:
                rows[i, vocabulary.index(w)] = 1.0
    return rows


STATEMENT_KINDS = ("exists", "count", "colour", "relation", "background", "unseen")


def statement_kind(text: str) -> str:
    """Which of the benchmark's statement templates wrote ``text`` (``STATEMENT_KINDS``)."""
    text = text.lower().rstrip(".")
    if any(p in text for p in lexicon.UNSEEN_PROPERTIES):
        return "unseen"
    if text.startswith("the background is"):
        return "background"
    if text.startswith("there is") and text.endswith("in the picture"):
        return "exists"
    if text.startswith(("there is", "there are")):
        return "count"  # "there are two red circles", "there is one star", "there are no squares"
    if text.split()[-1] in lexicon.COLOURS:
        return "colour"
    return "relation"


def ranking(scores: Tensor, positive: Tensor) -> float:
    """Area under the ROC curve: how often a positive scores above a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    above = (pos[:, None] > neg[None]).float().mean() + 0.5 * (pos[:, None] == neg[None]).float().mean()
    return float(above)


def by_kind(texts: Sequence[str], labels: Tensor, logits: Tensor, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per statement kind: rows, label counts, accuracy, and the contradiction ranking against the
    kind's other label (entailment, or neutral for unseen properties)."""
    contradiction = names.index("contradiction")
    kinds = [statement_kind(t) for t in texts]
    rows = []
    for kind in STATEMENT_KINDS:
        keep = torch.tensor([k == kind for k in kinds], dtype=torch.bool)
        if not keep.any():
            continue
        y, scores = labels[keep], logits[keep]
        other = names.index("neutral" if kind == "unseen" else "entailment")
        pair = (y == contradiction) | (y == other)
        margin = scores[:, contradiction] - scores[:, other]
        rows.append({"kind": kind, "rows": int(keep.sum()),
                     "labels": {n: int((y == i).sum()) for i, n in enumerate(names)},
                     "accuracy": float((scores.argmax(1) == y).float().mean()),
                     "other": names[other], "ranking": ranking(margin[pair], (y == contradiction)[pair])})
    return rows


def unseen_property(texts: Sequence[str], labels: Tensor, names: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Which rows state an unseeable property as neutral or contradiction, and ``present``
    (neutral: the described object is in the picture)."""
    neutral, contradiction = names.index("neutral"), names.index("contradiction")
    about = torch.tensor([statement_kind(t) == "unseen" for t in texts])
    keep = about & ((labels == neutral) | (labels == contradiction))
    return keep, (labels == neutral).long()


@torch.no_grad()
def encode(model: nn.Module, dataset: Any, name: str, batch_size: int, max_rows: int | None,
           judge: bool = False) -> dict[str, Any]:
    """Text [CLS] ``[N, D]``, trunk cells ``[N, S, C]`` with their padding ``[N, S]``, texts, labels,
    and with ``judge`` the run's own logits ``[N, 3]``."""
    from unimm.training.streams import eval_batches

    cls, cells, padding, logits = [], [], [], []
    for batch in eval_batches(dataset, batch_size=batch_size, rank=0, world_size=1,
                              max_batches=None if max_rows is None else -(-max_rows // batch_size)):
        text = model.text_encoder(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"), name)
        cls.append(text.hidden[:, 0])
        features, pad = model.image_encoder.backbone(batch["image"], ~batch["pixel_mask"].bool())
        cells.append(features.flatten(2).transpose(1, 2))  # [B, h*w, C]
        padding.append(pad.flatten(1))
        if judge:
            logits.append(model(batch)["logits"])
    longest = max(c.shape[1] for c in cells)
    cells = [F.pad(c, (0, 0, 0, longest - c.shape[1])) for c in cells]
    padding = [F.pad(p, (0, longest - p.shape[1]), value=True) for p in padding]
    rows = sum(len(c) for c in cls)
    examples = dataset.examples[:rows]
    out = {"cls": torch.cat(cls), "cells": torch.cat(cells), "padding": torch.cat(padding),
           "texts": [ex.text for ex in examples], "labels": torch.tensor([ex.label for ex in examples])}
    if judge:
        out["logits"] = torch.cat(logits)
    return out


def majority(train: Tensor, val: Tensor) -> float:
    return float((val == torch.mode(train).values).float().mean())


def linear_probe(x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, classes: int, steps: int) -> float:
    """Val accuracy of a full-batch Adam-trained linear classifier."""
    generator = torch.Generator().manual_seed(0)
    probe = nn.Linear(x.shape[1], classes)
    nn.init.normal_(probe.weight, std=0.01, generator=generator)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(probe(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        return float((probe(x_val).argmax(1) == y_val).float().mean())


class CellReader(nn.Module):
    """``present = max_cells MLP(W_t t + W_c LN(cell))``: an existence reader built for the look-up."""

    def __init__(self, text_size: int, cell_size: int, width: int = 64) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cell_size)
        self.text = nn.Linear(text_size, width)
        self.cell = nn.Linear(cell_size, width)
        self.score = nn.Sequential(nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, text: Tensor, cells: Tensor, padding: Tensor) -> Tensor:
        scores = self.score(self.text(text)[:, None] + self.cell(self.norm(cells)))[..., 0]  # [N, S]
        best = scores.masked_fill(padding, -1e4).max(1).values - self.bias  # [N]
        return torch.stack([-best, best], 1) / 2  # logits of (absent, present)


def existence_probe(train: dict[str, Tensor], val: dict[str, Tensor], steps: int, batch_size: int,
                    report: Sequence[int], lr: float = 1e-2) -> list[tuple[int, float]]:
    """Val accuracy of a ``CellReader`` after each step count in ``report``."""
    torch.manual_seed(0)
    reader = CellReader(train["text"].shape[1], train["cells"].shape[2])
    optimizer = torch.optim.Adam(reader.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    out = []
    for step in range(1, steps + 1):
        pick = torch.randint(len(train["y"]), (batch_size,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(reader(train["text"][pick], train["cells"][pick], train["padding"][pick]),
                        train["y"][pick]).backward()
        optimizer.step()
        if step in report:
            with torch.no_grad():
                guess = reader(val["text"], val["cells"], val["padding"]).argmax(1)
            out.append((step, float((guess == val["y"]).float().mean())))
    return out


def load_run(folder: Path, checkpoint: str | None) -> tuple[nn.Module, dict[str, Any], str, list[str]]:
    """The run's model with its weights, its SNLI-VE train and val datasets, their config key, labels."""
    from unimm.registry import DATASETS, MODELS
    from unimm.session import prepare
    from unimm.training import checkpoint as ckpt
    from unimm.training.trainer import build_datasets, dataset_info

    if not (folder / "config.yaml").is_file():
        raise ConfigError(f"{folder}: no config.yaml; give the folder of a finished unimm run")
    weights = checkpoint or folder / "checkpoints" / "last"
    if not Path(weights).exists():
        raise ConfigError(f"{weights}: no weights; train the run first or pass --checkpoint")
    cfg, _ = prepare(folder / "config.yaml")
    names = [n for n, node in cfg["datasets"].items() if node.get("type") == "snli_ve"]
    if not names:
        raise ConfigError(f"{folder}/config.yaml: no dataset of type snli_ve; probe a run that read SNLI-VE")
    name, val_split = names[0], cfg["evaluation"]["split"]
    train = build_datasets(cfg, "train")  # every dataset: the model's heads and task tokens are sized from them
    model = MODELS.build(cfg["model"], path="model", dataset_info=dataset_info(train))
    ckpt.init_from(model, weights)
    splits = {"train": train[name], val_split: DATASETS.build(cfg["datasets"][name], split=val_split, name=name)}
    return model.eval(), splits, name, list(train[name].info()["labels"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run folder (config.yaml, checkpoints/)")
    parser.add_argument("--checkpoint", help="weights to load instead of <run>/checkpoints/last")
    parser.add_argument("--steps", type=int, default=1000, help="updates of the existence reader")
    parser.add_argument("--batch-size", type=int, default=128, help="its batch size")
    parser.add_argument("--lr", type=float, default=1e-2, help="its Adam learning rate")
    parser.add_argument("--max-rows", type=int, default=None, help="encode at most this many rows a split")
    args = parser.parse_args(argv)
    try:
        model, datasets, name, labels = load_run(args.run, args.checkpoint)
    except ConfigError as err:
        print(f"probe_snli_ve: {err}\n(relative paths in {args.run}/config.yaml are read from the folder the "
              f"run was started in; run the probe from there)", file=sys.stderr)
        return 2
    (train_split, train), (val_split, val) = ((s, encode(model, d, name, 64, args.max_rows, judge=s != "train"))
                                              for s, d in datasets.items())
    print(f"SNLI-VE probes of {args.run} ({len(train['texts'])} {train_split} rows, {len(val['texts'])} "
          f"{val_split} rows)\n")
    print(f"The run's {val_split} answers by kind of statement\n")
    print("| kind | rows | labels | accuracy | contradiction ranked above |\n|---|---|---|---|---|")
    for row in by_kind(val["texts"], val["labels"], val["logits"], labels):
        counts = ", ".join(f"{n} {c}" for n, c in row["labels"].items() if c)
        print(f"| {row['kind']} | {row['rows']} | {counts} | {row['accuracy']:.3f} | "
              f"{row['other']}: {row['ranking']:.3f} |")
    print()
    print(f"| probe | {val_split} accuracy | majority |\n|---|---|---|")
    for kind in ("shape", "colour"):
        y, y_val = word_class(train["texts"], kind), word_class(val["texts"], kind)
        accuracy = linear_probe(train["cls"], y, val["cls"], y_val, len(WORDS[kind]) + 1, steps=300)
        print(f"| text [CLS] -> described {kind} | {accuracy:.3f} | {majority(y, y_val):.3f} |")
    subsets = []
    for split in (train, val):
        keep, present = unseen_property(split["texts"], split["labels"], labels)
        subsets.append({"text": oracle([t for t, k in zip(split["texts"], keep) if k]), "y": present[keep],
                        "cells": split["cells"][keep], "padding": split["padding"][keep]})
    if min(len(s["y"]) for s in subsets) == 0:
        print("| trunk cells + oracle description -> present | no unseen-property rows | |")
        return 0
    base = majority(subsets[0]["y"], subsets[1]["y"])
    points = sorted({max(1, args.steps * k // 4) for k in (1, 2, 3, 4)})
    for step, accuracy in existence_probe(*subsets, steps=args.steps, batch_size=args.batch_size,
                                           report=points, lr=args.lr):
        samples = step * args.batch_size
        print(f"| trunk cells + oracle description -> present, {step} steps ({samples:,} samples) "
              f"| {accuracy:.3f} | {base:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

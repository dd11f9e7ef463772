"""Run METER's pre-training and fine-tuning on the embedded shapes benchmark, beside the paper and the baselines.

    python tools/reproduce_meter.py main               # MLM + ITM pre-training, then VQAv2, SNLI-VE, NLVR2 and Flickr30k
                                                       # retrieval fine-tuning, each also from random init: the
                                                       # project's main command
    python tools/reproduce_meter.py main --seeds 1 2 3
    python tools/reproduce_meter.py ablations          # Tables 6, 7 and 10 on the benchmark: co-attention vs merged
                                                       # attention vs encoder-decoder, MLM / ITM / MLM + ITM,
                                                       # uniform vs bottom/top learning rates; each by VQAv2 and
                                                       # zero-shot Flickr30k
    python tools/reproduce_meter.py encoders           # Tables 3 and 4 on the benchmark: each encoder pair the project
                                                       # builds, without VLP, fine-tuned on VQAv2 and SNLI-VE
    python tools/reproduce_meter.py main --dry-run     # validate every config of the plan, run nothing

Every run is a ``projects/meter`` config with ``variant=shapes``, carried out in this process in its
own folder under ``--out`` (one tree per seed); a run whose record is there is reused. The fine-tuning
runs start from this seed's pre-training run (everything but the heads, the reference code's rule) or
from random init. The table (mean and spread over seeds) goes to ``<out>/main.md`` and ``.json`` and
is printed; speed is reported, never asserted. ``ablations`` pre-trains once per setting of
``projects/meter/ablations`` and measures each pre-training as the paper's Tables 6, 7 and 10 do: VQAv2
after fine-tuning and zero-shot Flickr30k retrieval (none after MLM alone: it leaves no matching head).
``encoders`` fine-tunes ``projects/meter/encoders`` (no pre-training) once per Table 3 / 4 row that the
project builds, on VQAv2 and SNLI-VE (about a minute each); Flickr30k retrieval is left out (its
fine-tuning ranks 16 captions a picture and its evaluation scores 50k pairs: several minutes a run), and
Table 5 (a pre-training run per encoder pair) too.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools")]  # run from a checkout without installing

from reproduction import Runs, accuracy_baselines, command_line, fmt, start_from  # noqa: E402

METER = REPO / "projects" / "meter"
VARIANT = "shapes"

# task -> (fine-tuning config, metric key, baselines.json task (None: chance of retrieval), label, the paper's
# METER-CLIP-ViT-B/16 number: Table 8, and Table 9 for fine-tuned retrieval)
TASKS = {
    "vqa2": ("vqa2.yaml", "vqa2/vqa_accuracy", "vqa2", "VQAv2 (VQA score)", 77.68),
    "snli_ve": ("snli_ve.yaml", "snli_ve/accuracy", "snli_ve", "SNLI-VE (accuracy)", 80.86),
    "nlvr2": ("nlvr2.yaml", "nlvr2/accuracy", "nlvr2", "NLVR2 (accuracy, dev)", 82.33),
    "flickr30k_ir": ("retrieval_flickr30k.yaml", "retrieval/ir_r1", None, "Flickr30k IR@1 (fine-tuned, val)", 82.22),
    "flickr30k_tr": ("retrieval_flickr30k.yaml", "retrieval/tr_r1", None, "Flickr30k TR@1 (fine-tuned, val)", 94.30),
}
RETRIEVAL_CHANCE = "chance 1.0 (100 images, 500 captions)"


@dataclass
class Runner(Runs):
    """METER's runs of one seed: its pre-training, then each task from it and from random init."""

    def pretrain(self) -> Path:
        self.run("pretrain", "pretrain.yaml", [f"env.seed={self.seed}"])
        return self.root / "pretrain"

    def finetune(self, task: str, source: Path | None, start: str) -> float | None:
        """``task``'s metric after fine-tuning from ``source`` (None: random init); tasks that read the same
        config (IR and TR of one retrieval run) share its run ``<config stem>_<start>``."""
        config, key, _, _, _ = TASKS[task]
        name = f"{Path(config).stem}_{start}"
        return self.run(name, config, [f"env.seed={self.seed}", *start_from(source)]).get(key)


# setting -> (pre-training config (None: pretrain.yaml), overrides of its downstream runs, label,
#            the paper's (VQAv2 test-dev, Flickr zero-shot IR@1, TR@1); None: not readable in our copy of the
#            paper: its Table 7 lost the encoder-decoder row, only the text's "the encoder-only model can
#            outperform the encoder-decoder model" is left)
ABLATIONS = {
    "default": (None, [], "co-attention, MLM + ITM, bottom / top rates (Tables 6, 7, 10)", (74.98, 66.08, 78.10)),
    "merged_attention": ("ablations/merged_attention.yaml", ["model.fusion=merged_attention"],
                         "Table 7: merged attention", (74.00, 57.46, 73.10)),
    "encoder_decoder": ("ablations/encoder_decoder.yaml", ["model.architecture=encoder_decoder"],
                        "Table 7: encoder-decoder (3 + 3 layers, span LM + ITM through a class token)", None),
    "mlm_only": ("ablations/mlm_only.yaml", [], "Table 10: MLM only", (74.19, None, None)),
    "itm_only": ("ablations/itm_only.yaml", [], "Table 10: ITM only", (72.63, 53.74, 71.00)),
    "uniform_lr": ("ablations/uniform_lr.yaml", [], "Table 6: one learning rate", (73.16, 48.80, 63.70)),
    "mim_in_batch": ("ablations/mim_in_batch.yaml", [], "Table 10: + MIM, in-batch negatives", (74.01, 62.12, 76.90)),
    "mim_discrete": ("ablations/mim_discrete.yaml", [], "Table 10: + MIM, discrete codes (random-projection codes, "
                     "not DALL-E's)", (74.21, 59.80, 76.30)),
}
ABLATION_VQA = "ablation_vqa2"
ZERO_SHOT_KEYS = {"ablation_zero_shot_ir1": "flickr30k/ir_r1", "ablation_zero_shot_tr1": "flickr30k/tr_r1"}


def ablation_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    """Each pre-training setting, then VQAv2 fine-tuning and zero-shot Flickr30k retrieval from it."""
    rows: dict[str, dict[str, float | None]] = {ABLATION_VQA: {}, **{key: {} for key in ZERO_SHOT_KEYS}}
    for name, (config, downstream, _, _) in ABLATIONS.items():
        if config is None:
            source, vqa_name = runner.pretrain(), "vqa2_pretrained"  # the main command's runs
        else:
            runner.run(name, config, [f"env.seed={runner.seed}"])
            source, vqa_name = runner.root / name, f"vqa2_after_{name}"
        config_file, key, _, _, _ = TASKS["vqa2"]
        rows[ABLATION_VQA][name] = runner.run(vqa_name, config_file, [f"env.seed={runner.seed}", *start_from(source),
                                                                *downstream]).get(key)
        if name == "mlm_only":
            continue
        found = runner.run(f"zero_shot_after_{name}", "retrieval_zero_shot.yaml",
                           [f"env.seed={runner.seed}", *start_from(source), *downstream])
        for row, metric in ZERO_SHOT_KEYS.items():
            rows[row][name] = found.get(metric)
    return rows


def main_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    source = runner.pretrain()
    return {task: {"pre-trained": runner.finetune(task, source, "pretrained"),
                   "random init": runner.finetune(task, None, "random_init")} for task in TASKS}


# Tables 3 and 4 ("without VLP", Sec. 4.1.1): row -> (table, vars.vision, vars.text, label, the paper's VQAv2,
# SNLI-VE, Flickr30k IR@1 and TR@1). vars.vision / vars.text None: an encoder the project does not build.
ENCODER_ROWS = {
    "bert": ("3", "clip_b32", "bert", "BERT + CLIP-B-224/32", (69.56, 76.27, 49.60, 66.60)),
    "roberta": ("3, 4", "clip_b32", "roberta", "RoBERTa + CLIP-B-224/32", (69.69, 76.53, 49.86, 68.90)),
    "electra": ("3", "clip_b32", "electra", "ELECTRA + CLIP-B-224/32", (69.22, 76.57, 41.80, 58.30)),
    "deberta": ("3", "clip_b32", "deberta", "DeBERTa + CLIP-B-224/32", (69.40, 76.74, 51.50, 67.70)),
    "albert": ("3", "clip_b32", "albert", "ALBERT-xlarge + CLIP-B-224/32", (69.94, 76.20, 52.20, 68.70)),
    "emb_only": ("3", "clip_b32", "emb_only", "Emb-only + CLIP-B-224/32", (67.13, 74.85, 49.06, 68.20)),
    "clip_text": ("3", "clip_b32", "clip_text", "CLIP's text encoder + CLIP-B-224/32", (69.31, 75.37, 54.96, 73.80)),
    "vit": ("4", "vit_b384_16", "roberta", "RoBERTa + ViT-B-384/16", (69.09, 76.35, 40.30, 59.80)),
    "deit": ("4", "deit_b384_16", "roberta", "RoBERTa + DeiT-B-384/16", (68.92, 75.97, 33.38, 50.90)),
    "deit_distilled": ("4", "deit_distilled_b384_16", "roberta", "RoBERTa + distilled DeiT-B-384/16",
                       (67.84, 76.17, 34.84, 52.10)),
    "cait": ("4", "cait_m384_32", "roberta", "RoBERTa + CaiT-M-384/32 (timm cait_m36_384)",
             (71.52, 76.62, 38.96, 61.30)),
    "volo": ("4", "volo_d4_448_32", "roberta", "RoBERTa + VOLO-4-448/32 (timm volo_d4_448)",
             (71.44, 76.42, 40.90, 61.40)),
    "swin": ("4", "swin_b384_32", "roberta", "RoBERTa + Swin-B-384/32", (72.38, 77.65, 52.30, 69.50)),
    "clip_b16": ("4", "clip_b16", "roberta", "RoBERTa + CLIP-B-224/16", (71.75, 77.54, 57.64, 76.90)),
    "beit": ("4", "beit_b224_16", "roberta", "RoBERTa + BEiT-B-224/16", (68.45, 75.28, 32.24, 59.80)),
}
# DeiT-B is ViT-B's architecture (DeiT changes the training, not the model): from random init the two rows
# are one model, so the shapes benchmark runs it once.
SAME_AT_SHAPES = {"deit_b384_16": "vit_b384_16"}
# measured column -> (config under projects/meter, metric key)
ENCODER_TASKS = {"encoders_vqa2": ("encoders/vqa2.yaml", "vqa2/vqa_accuracy"),
                 "encoders_snli_ve": ("encoders/snli_ve.yaml", "snli_ve/accuracy")}


def encoder_rows(runner: Runner) -> dict[str, dict[str, float | None]]:
    """Each built Table 3 / 4 row fine-tuned without pre-training on VQAv2 and SNLI-VE; rows that are one
    model at the benchmark's size (DeiT and ViT) and the row both tables share (RoBERTa + CLIP-B/32) run once."""
    rows: dict[str, dict[str, float | None]] = {column: {} for column in ENCODER_TASKS}
    done: dict[str, dict[str, float]] = {}
    for name, (_, vision, text, _, _) in ENCODER_ROWS.items():
        if vision is None:
            continue
        vision = SAME_AT_SHAPES.get(vision, vision)
        for column, (config, key) in ENCODER_TASKS.items():
            run = f"no_vlp_{Path(config).stem}_{vision}_{text}"
            if run not in done:
                done[run] = runner.run(run, config, [f"env.seed={runner.seed}", f"vars.vision={vision}",
                                                     f"vars.text={text}"])
            rows[column][name] = done[run].get(key)
    return rows


COMMANDS = {"main": main_rows, "ablations": ablation_rows, "encoders": encoder_rows}


def baselines_of(data_dir: Path) -> dict[str, str]:
    baselines = json.loads((data_dir / "shapes" / "baselines.json").read_text())
    shown = {}
    for task, (_, _, name, _, _) in TASKS.items():
        if name is None:
            shown[task] = RETRIEVAL_CHANCE
            continue
        entry = dict(baselines[name])
        extra = {k: v for k, v in entry.items() if k in ("hypothesis_only", "hypothesis_template_prior",
                                                         "sentence_only", "sentence_template_prior")}
        shown[task] = accuracy_baselines(entry) + "".join(f", {k} {100 * v:.1f}" for k, v in extra.items())
    return shown


def render_ablations(table: dict, seeds: list[int]) -> str:
    title = (f"METER's pre-training ablations on the shapes benchmark, `python tools/reproduce_meter.py ablations`, "
             f"seeds {seeds} (mean ± standard deviation over seeds, %; zero-shot retrieval over the first 100 "
             "Flickr30k test images, where chance IR@1 is 1.0)")
    lines = [title, "", "| setting | paper VQAv2 | paper Flickr ZS IR@1 / TR@1 | VQAv2 | Flickr ZS IR@1 / TR@1 |",
             "|---|---|---|---|---|"]
    for name, (_, _, label, paper) in ABLATIONS.items():
        vqa, ir1, tr1 = paper or (None, None, None)
        paper_vqa = "unreadable in our copy" if paper is None else f"{vqa:.2f}"
        paper_zs = "unreadable in our copy" if paper is None else "-" if ir1 is None else f"{ir1:.2f} / {tr1:.2f}"
        ours_zs = " / ".join(fmt(table.get(row, {}).get(name)) for row in ZERO_SHOT_KEYS)
        lines.append(f"| {label} | {paper_vqa} | {paper_zs} | {fmt(table.get(ABLATION_VQA, {}).get(name))} | "
                     f"{'-' if name == 'mlm_only' else ours_zs} |")
    return "\n".join(lines) + "\n"


def render_encoders(table: dict, baselines: dict[str, str], seeds: list[int]) -> str:
    title = (f"METER's encoders without VLP (Tables 3 and 4) on the shapes benchmark, `python tools/reproduce_meter.py "
             f"encoders`, seeds {seeds} (mean ± standard deviation over seeds, %; small random-init encoders of "
             "each kind, so the paper's pre-trained weights are not what is compared)")
    lines = [title, "", "| table | encoders | paper VQAv2 | paper VE | paper IR@1 / TR@1 | VQAv2 | SNLI-VE |",
             "|---|---|---|---|---|---|---|"]
    for name, (number, vision, _, label, (vqa, ve, ir1, tr1)) in ENCODER_ROWS.items():
        if vision is None:
            ours = "not built | not built"
        else:
            ours = " | ".join(fmt(table.get(column, {}).get(name)) for column in ENCODER_TASKS)
            if vision in SAME_AT_SHAPES:
                label += f" (the {SAME_AT_SHAPES[vision]} run: the same model from random init)"
        lines.append(f"| {number} | {label} | {vqa:.2f} | {ve:.2f} | {ir1:.2f} / {tr1:.2f} | {ours} |")
    shown = [f"{task} {baselines[task]}" for task in ("vqa2", "snli_ve") if task in baselines]
    if shown:
        lines += ["", "Benchmark baselines: " + "; ".join(shown) + "."]
    return "\n".join(lines) + "\n"


def render(command: str, table: dict, baselines: dict[str, str], seeds: list[int]) -> str:
    parts = []
    if command in ("main", "all"):
        parts.append(render_main({t: v for t, v in table.items() if t in TASKS}, baselines, seeds))
    if command in ("ablations", "all"):
        parts.append(render_ablations(table, seeds))
    if command in ("encoders", "all"):
        parts.append(render_encoders(table, baselines, seeds))
    return "\n".join(parts)


def render_main(table: dict, baselines: dict[str, str], seeds: list[int]) -> str:
    columns = list(dict.fromkeys(c for task in table.values() for c in task))
    title = (f"METER on the shapes benchmark, `python tools/reproduce_meter.py main`, seeds {seeds} "
             "(mean ± standard deviation over seeds, %)")
    lines = [title, "", "| task | paper (METER-CLIP-ViT-B/16) | " + " | ".join(columns) + " | baselines |",
             "|---" * (len(columns) + 3) + "|"]
    for task, values in table.items():
        cells = " | ".join(fmt(values.get(c)) for c in columns)
        lines.append(f"| {TASKS[task][3]} | {TASKS[task][4]} | {cells} | {baselines[task]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return command_line(__doc__, COMMANDS, list(COMMANDS), lambda out, data, seed, dry: Runner(
        METER, VARIANT, out, data, seed, dry), render, baselines_of, "save/reproduce_meter", argv)


if __name__ == "__main__":
    sys.exit(main())

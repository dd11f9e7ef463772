"""Teachers from the published post-LN models: the paper's "pre-trained BERT" and "ViT" (Sec. 3.2.1, Eq. 7).

The paper distils the text heads from the published BERT and the image head from the published
ViT; the default teachers of this project are our own runs (``teachers.py``). These two wrap the
published models as they are, post-LN, from local files only (nothing is downloaded)::

    teachers:
      text: {model: {type: published_bert_teacher, path: <a BertForPreTraining folder>}, datasets: [corpus]}
      image: {model: {type: published_vit_teacher, path: <a timm ViT state dict>, arch: vit_base_patch16_224},
              datasets: [images]}

Their weights come from ``path``, so the teacher spec gives no ``checkpoint``. Each returns the
logits the student's heads produce, under the same keys, so Eq. 7 compares like with like:

- ``published_bert_teacher``: ``mlm_logits`` ``[n, V]`` on the ``n`` masked positions (row-major,
  as the student's) and ``nsp_logits`` ``[B, 2]`` with class 1 = "B follows A" (the corpus's
  ``is_next``; Hugging Face's NSP head puts "B follows A" at class 0, so its two columns are swapped).
- ``published_vit_teacher``: ``logits`` ``[B, C]`` of its classification head.

The teacher's vocabulary / class count must be the student's head's (a clear error names both).
Both see the student's batch as it is: the same token ids (the same WordPiece vocabulary: the
student's data tokenizer should be the published BERT's own folder) and the same pixels (the image
pipeline's normalisation and resolution must be the published ViT's; the paper's 224 at 16x16 is).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.registry import MODELS

logger = logging.getLogger("unimm")


class PublishedTeacher(nn.Module):
    """A teacher whose own node names its weights (a published model's files), not a unimm checkpoint.

    Args:
        source: the file or folder its weights were read from (for messages).
    """

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source


class PublishedBertTeacher(PublishedTeacher):
    """Hugging Face ``BertForPreTraining`` as an MLM + NSP teacher.

    Args:
        bert: the loaded model (post-LN, as published).
        source: its folder.
    """

    def __init__(self, bert: nn.Module, source: str) -> None:
        super().__init__(source)
        self.bert = bert

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``input_ids`` / ``attention_mask`` / ``token_type_ids`` ``[B, T]`` (``mlm_labels`` ``[B, T]``, -100
        where not masked) -> ``mlm_logits`` ``[n, V]`` (``[B, T, V]`` without labels), ``nsp_logits`` ``[B, 2]``."""
        out = self.bert(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                        token_type_ids=batch.get("token_type_ids"))
        scores = out.prediction_logits  # [B, T, V]
        labels = batch.get("mlm_labels")
        mlm = scores if labels is None else scores[labels >= 0]  # [n, V]: the student's rows, in its order
        nsp = out.seq_relationship_logits.flip(-1)  # [B, 2]: HF's (follows, random) -> ours (random, follows)
        return {"mlm_logits": mlm, "nsp_logits": nsp}


class PublishedViTTeacher(PublishedTeacher):
    """A timm Vision Transformer as a classification teacher.

    Args:
        vit: the loaded timm model.
        source: its state dict file.
    """

    def __init__(self, vit: nn.Module, source: str) -> None:
        super().__init__(source)
        self.vit = vit

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``image`` ``[B, 3, H, W]`` -> ``logits`` ``[B, C]``."""
        return {"logits": self.vit(batch["image"])}


def student_sizes(dataset_info: Mapping[str, Mapping[str, Any]], task_type: str, size_key: str, teacher: str,
                  what: str) -> int:
    """The one ``size_key`` (vocabulary, classes) of the student's datasets this teacher labels."""
    wrong = {name: info.get("task_type") for name, info in dataset_info.items() if info.get("task_type") != task_type}
    if wrong:
        found = ", ".join(f"{n} is {t}" for n, t in wrong.items())
        raise ConfigError(f"{teacher} labels {task_type} datasets ({what}); {found}: "
                          "give those datasets another teacher, or none", key="datasets")
    sizes = {int(info[size_key]) for info in dataset_info.values()}
    if len(sizes) != 1:
        raise ConfigError(f"{teacher}: the datasets it labels have different {size_key}s {sorted(sizes)}; "
                          "give each its own teacher", key="datasets")
    return sizes.pop()


@MODELS.register()
def published_bert_teacher(dataset_info: dict[str, dict[str, Any]], path: str) -> PublishedBertTeacher:
    """The published BERT (a local Hugging Face ``BertForPreTraining`` folder) as the text teacher.

    Args:
        dataset_info: the student's, of the datasets this teacher labels (run time): ``text_pretraining``
            (MLM + NSP), their ``vocab_size`` the folder's.
        path: a folder written by ``save_pretrained`` (``config.json`` and weights), e.g. bert-base-uncased.

    Raises:
        ConfigError: an absent folder, a vocabulary of another size than the student's, a folder
            without the pre-training heads (a ``BertModel``), or a dataset that is not MLM + NSP.
    """
    from transformers import BertConfig, BertForPreTraining

    vocab = student_sizes(dataset_info, "text_pretraining", "vocab_size", "published_bert_teacher", "MLM + NSP")
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} is not a Hugging Face model folder (no config.json); give a local "
                          "BertForPreTraining folder as save_pretrained writes it (nothing is downloaded)", key="path")
    config = BertConfig.from_pretrained(str(folder), local_files_only=True)
    if config.vocab_size != vocab:
        raise ConfigError(f"{folder}: the teacher's vocabulary has {config.vocab_size} entries, the student's MLM "
                          f"head {vocab}; the student's data tokenizer must be this BERT's own (its vocab.txt)",
                          key="path")
    bert, info = BertForPreTraining.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if not k.endswith("position_ids")]
    if missing:
        raise ConfigError(f"{folder} lacks {len(missing)} weights of BertForPreTraining "
                          f"(e.g. {', '.join(missing[:3])}): "
                          "a teacher needs the published MLM and NSP heads (cls.predictions, cls.seq_relationship); "
                          "give the folder of a BertForPreTraining model such as bert-base-uncased", key="path")
    return PublishedBertTeacher(bert, str(folder))


@MODELS.register()
def published_vit_teacher(dataset_info: dict[str, dict[str, Any]], path: str, arch: str = "vit_base_patch16_224",
                          arch_args: dict[str, Any] | None = None) -> PublishedViTTeacher:
    """The published ViT (a local timm state dict) as the image teacher.

    Args:
        dataset_info: the student's, of the datasets this teacher labels (run time): ``classification``,
            their ``num_classes`` the state dict's head's.
        path: the state dict as timm's ``model.state_dict()`` writes it (``.pth`` / ``.pt`` / ``.safetensors``;
            a ``{"model": ...}`` nesting accepted).
        arch: the timm architecture (``timm.create_model`` name; built without downloading anything).
        arch_args: more ``timm.create_model`` keyword arguments (e.g. ``img_size``), to match the file.

    Raises:
        ConfigError: an absent file, a head with another class count than the student's, weights that
            do not fit ``arch``, or a dataset that is not classification.
    """
    import timm

    from unimm.training.checkpoint import read_weights, state_problems

    classes = student_sizes(dataset_info, "classification", "num_classes", "published_vit_teacher", "image classes")
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file} does not exist; give a local timm ViT state dict file (nothing is downloaded)",
                          key="path")
    source, weights = read_weights(file)
    head = weights.get("head.weight")
    if head is None or head.shape[0] != classes:
        found = "no classification head (head.weight)" if head is None else f"a head of {head.shape[0]} classes"
        raise ConfigError(f"{source} has {found}, the student's head {classes} classes; give a ViT fine-tuned on the "
                          "student's classes (e.g. ImageNet-1K's 1,000 for ImageNet)", key="path")
    vit = timm.create_model(arch, pretrained=False, num_classes=classes, **(arch_args or {}))
    problems = state_problems(vit.state_dict(), weights)
    if problems:
        raise ConfigError(f"{source} does not fit timm's {arch}{f' with {arch_args}' if arch_args else ''}: "
                          f"{'; '.join(problems[:4])}; give the arch (and arch_args, e.g. img_size) the file was "
                          "saved from", key="path")
    vit.load_state_dict(weights, strict=True)
    return PublishedViTTeacher(vit, str(source))

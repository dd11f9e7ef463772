"""Tiny cases of METER's parts: the timm vision encoders, the BERT / RoBERTa text encoder, co-attention and
merged-attention fusion, the ITM and VQA heads, and the METER models (the paper size on the meta device)."""
from __future__ import annotations

import torch

from tests.models.part_cases.common import Case, build

VOCAB = 50
ANSWERS = 11
TINY_CLIP = {"type": "clip_vit_encoder", "image_size": 32, "patch_size": 16, "hidden_size": 32, "num_layers": 3,
             "num_heads": 2}
TINY_TEXT = {"type": "hf_text_encoder", "kind": "bert", "hidden_size": 32, "num_layers": 2, "num_heads": 2,
             "intermediate_size": 64}
TINY_FUSION = {"type": "co_attention", "num_layers": 2, "num_heads": 2, "intermediate_size": 64}
METER_NODE = {"type": "meter", "vision_encoder": TINY_CLIP, "text_encoder": TINY_TEXT, "fusion": TINY_FUSION,
              "hidden_size": 32}


MIM_HIDDEN = torch.tensor([[True, False, False, True], [False, True, False, False]])  # 2 pictures of 4 patches


def meter_info() -> dict[str, dict]:
    """A pre-training dataset (MLM + ITM), a VQA dataset and an SNLI-VE one, as the trainer passes them."""
    return {"coco": {"task_type": "image_text_pretraining", "vocab_size": VOCAB, "mlm": True, "itm": True},
            "vqa2": {"task_type": "vqa", "vocab_size": VOCAB, "num_answers": ANSWERS,
                     "answer_vocab": [f"a{i}" for i in range(ANSWERS)]},
            "snli_ve": {"task_type": "classification", "vocab_size": VOCAB, "num_classes": 3,
                        "images_per_example": 1}}


def meter_batches(image_size: int = 32, batch_size: int = 4) -> dict[str, dict]:
    """One pre-training batch (clean and masked captions, matched / mismatched images) and one VQA batch."""
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    ids = torch.randint(5, VOCAB, (batch_size, 7), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    mask = torch.ones(batch_size, 7, dtype=torch.long)
    mask[-1, 5:] = 0
    ids[-1, 5:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    masked = ids.clone()
    masked[:, 2] = 4
    itm_label = torch.tensor([1, 0] * (batch_size // 2))
    other = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    itm_image = torch.where(itm_label[:, None, None, None].bool(), image, other)
    text = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return {
        "coco": {"dataset_name": "coco", "task_type": "image_text_pretraining", "image": image, **text,
                 "mlm_input_ids": masked, "mlm_labels": labels, "itm_image": itm_image, "itm_label": itm_label},
        "vqa2": {"dataset_name": "vqa2", "task_type": "vqa", "image": image, **text,
                 "answer_scores": torch.rand(batch_size, ANSWERS, generator=g)},
        "snli_ve": {"dataset_name": "snli_ve", "task_type": "classification", "image": image, **text,
                    "label": torch.arange(batch_size) % 3},
    }


def meter_losses(model) -> list[torch.Tensor]:
    size = model.vision_encoder.image_size[0]
    return [sum(model(batch)["losses"].values()) for batch in meter_batches(size).values()]


def vision_losses(encoder) -> list[torch.Tensor]:
    image = torch.randn(2, 3, *encoder.image_size, generator=torch.Generator().manual_seed(0))
    return [encoder(image).hidden.square().mean()]


def text_losses(encoder) -> list[torch.Tensor]:
    batch = meter_batches()["vqa2"]
    return [encoder(batch["input_ids"], batch["attention_mask"]).hidden.square().mean()]


def fusion_losses(fusion) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    text, image = torch.randn(2, 5, 32, generator=g), torch.randn(2, 4, 32, generator=g)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    out_text, out_image = fusion(text, padding, image, None)
    return [out_text.square().mean() + out_image.square().mean()]


CASES: dict[tuple[str, str], Case] = {
    ("models", "meter"): Case(lambda: build("models", METER_NODE, dataset_info=meter_info()), meter_losses),
    ("models", "meter_tiny"): Case(lambda: build("models", {"type": "meter_tiny"}, dataset_info=meter_info()),
                                   meter_losses),
    ("models", "meter_small"): Case(lambda: build("models", {"type": "meter_small", "image_size": 32},
                                                  dataset_info=meter_info()), meter_losses),
    ("models", "meter_paper"): Case(lambda: build("models", {"type": "meter_paper"}, dataset_info=meter_info()),
                                    meta=True),
    ("encoders", "clip_vit_encoder"): Case(lambda: build("encoders", TINY_CLIP), vision_losses),
    ("encoders", "vit_encoder"): Case(
        lambda: build("encoders", {"type": "vit_encoder", "image_size": 32, "patch_size": 16, "hidden_size": 32,
                                   "num_layers": 2, "num_heads": 2, "distilled": True}),
        vision_losses),
    ("encoders", "swin_encoder"): Case(
        lambda: build("encoders", {"type": "swin_encoder", "image_size": 32, "patch_size": 4, "window_size": 2,
                                   "embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2]}),
        vision_losses),
    ("encoders", "cait_encoder"): Case(
        lambda: build("encoders", {"type": "cait_encoder", "image_size": 32, "patch_size": 16, "hidden_size": 32,
                                   "num_layers": 2, "num_heads": 2}),
        vision_losses),
    ("encoders", "volo_encoder"): Case(
        lambda: build("encoders", {"type": "volo_encoder", "image_size": 32, "patch_size": 4, "stem_hidden_dim": 8,
                                   "layers": [1, 1], "embed_dims": [32, 32], "num_heads": [2, 2]}),
        vision_losses),
    ("encoders", "beit_encoder"): Case(
        lambda: build("encoders", {"type": "beit_encoder", "image_size": 32, "patch_size": 16, "hidden_size": 32,
                                   "num_layers": 2, "num_heads": 2}),
        vision_losses),
    ("encoders", "hf_text_encoder"): Case(lambda: build("encoders", {**TINY_TEXT, "vocab_size": VOCAB}), text_losses),
    ("fusions", "co_attention"): Case(lambda: build("fusions", {**TINY_FUSION, "hidden_size": 32}), fusion_losses),
    ("fusions", "merged_attention"): Case(
        lambda: build("fusions", {**TINY_FUSION, "type": "merged_attention", "hidden_size": 32}), fusion_losses),
    ("heads", "itm_head"): Case(
        lambda: build("heads", {"type": "itm_head", "input_size": 64}),
        lambda head: [head(torch.randn(4, 64), torch.tensor([1, 0, 0, 1]))[1]["itm"]]),
    ("heads", "mim_in_batch_head"): Case(
        lambda: build("heads", {"type": "mim_in_batch_head", "input_size": 32, "vision_size": 16}),
        lambda head: [head(torch.randn(2, 4, 32), torch.randn(2, 4, 16), MIM_HIDDEN)[1]["mim"]],
        unused=["mask_token"]),  # used by the model's masked vision pass, not by the head's own forward
    ("heads", "mim_code_head"): Case(
        lambda: build("heads", {"type": "mim_code_head", "input_size": 32, "vision_size": 16,
                                "tokenizer": {"type": "random_projection_codes", "patch_size": 16, "bits": 4}}),
        lambda head: [head(torch.randn(2, 4, 32), None, MIM_HIDDEN, torch.randn(2, 3, 32, 32))[1]["mim"]],
        unused=["mask_token"]),
    ("encoders", "random_projection_codes"): Case(  # no parameters: the codes feed a loss as targets
        lambda: build("encoders", {"type": "random_projection_codes", "patch_size": 16, "bits": 4}),
        lambda tokenizer: [torch.nn.functional.cross_entropy(torch.zeros(8, 16, requires_grad=True),
                                                             tokenizer(torch.randn(2, 3, 32, 32)).flatten())]),
    ("heads", "vl_classifier_head"): Case(
        lambda: build("heads", {"type": "vl_classifier_head", "num_classes": ANSWERS, "input_size": 64,
                                "loss": "soft_bce"}),
        lambda head: list(head(torch.randn(4, 64), {"answer_scores": torch.rand(4, ANSWERS)})[1].values())),
}

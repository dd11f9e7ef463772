"""Datasets in their official on-disk formats, tokenisers, image transforms and collation.

Importing this package registers every dataset builder (``DATASETS``) and processor
(``PROCESSORS``). Task types of the batches:

============================= ==========================================================
task type                     datasets
============================= ==========================================================
``detection``                 coco_detection, visual_genome
``vqa``                       vqa2, visual_genome_qa
``classification``            snli_ve, nlvr2 (image(s) + text), image_folder, cifar, oxford_flowers102,
                              oxford_pets (image)
``text_classification``       glue (all tasks but STS-B)
``text_regression``           glue STS-B
``image_text``                coco_captions
``image_text_pretraining``    image_text_pretraining (MLM + ITM fields over an image_text dataset)
``retrieval``                 karpathy_retrieval
``text_pretraining``          text_corpus (MLM + NSP)
============================= ==========================================================

The synthetic benchmark generator lives in ``unimm.benchmark.shapes``; it is not imported here.
"""
from unimm.data import (  # noqa: F401  (each import registers its parts)
    cifar,
    coco_captions,
    coco_detection,
    combined,
    glue,
    image_folder,
    image_text_pretraining,
    karpathy_retrieval,
    nlvr2,
    oxford_flowers102,
    oxford_pets,
    snli_ve,
    text_corpus,
    tokenizers,
    transforms,
    visual_genome,
    visual_genome_qa,
    vlp_captions,
    vqa2,
)

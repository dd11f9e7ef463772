"""Names that refer to other parts of the config (datasets, metric results) are checked with the
rest of the config, before anything is built, with every problem reported at once; a builder's own
errors are reported at its path from the config root, however deeply the part is nested."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from unimm.config import ConfigError, load_config, validate_config
from unimm.plugins import import_builtins, load_user_dirs
from unimm.registry import STEP_STRATEGIES, TASK_SAMPLERS

TWO_DATASETS = ["model.type=mlp_classifier", "datasets.blobs.type=blobs", "datasets.blobs.num_samples=64",
                "datasets.dots.type=blobs", "datasets.dots.num_samples=64",
                "evaluation.metrics.blobs=[{type: accuracy, per_class: true}]", "evaluation.metrics.dots=[accuracy]"]


@pytest.fixture(scope="module", autouse=True)
def parts():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "quickstart"), str(REPO / "projects" / "unit")])


def problems(*overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate_config(load_config(None, [*TWO_DATASETS, *overrides]))
    return err.value.problems


def test_correct_references_validate():
    cfg = validate_config(load_config(None, [
        *TWO_DATASETS, "training.sampler={type: ratios, ratios: {blobs: 1, dots: 0}}",
        "training.step_strategy={type: accumulate, datasets: [blobs, dots], weights: {dots: 0.5}}",
        "training.early_stop.metric=blobs/recall/3", "training.callbacks=[{type: baseline_table, "
        "baselines: b.json, rows: {blobs/accuracy: x, dots/accuracy: y}}]"]))
    assert cfg["training"]["early_stop"]["metric"] == "blobs/recall/3"


def test_every_bad_reference_is_reported_at_once():
    found = problems(
        "training.sampler={type: ratios, ratios: {blobs: 1, dotz: 1}}",
        "training.step_strategy={type: accumulate, weights: {blob: 0.2}}",
        "training.early_stop.metric=blobs/acuracy",
        "training.callbacks=[{type: baseline_table, baselines: b.json, rows: {dots/accuracy: y, coco/map: c}}]")
    assert found == [
        "training.sampler.ratios.dotz: (a key) 'dotz' is not a configured dataset; did you mean 'dots'? the "
        "datasets are: blobs, dots (the keys of the datasets section) for task_samplers 'ratios'",
        "training.sampler.ratios.dots: missing; name every dataset here (configured: blobs, dots) for "
        "task_samplers 'ratios'",
        "training.step_strategy.weights.blob: (a key) 'blob' is not a configured dataset; did you mean 'blobs'? "
        "the datasets are: blobs, dots (the keys of the datasets section) for step_strategies 'accumulate'",
        "training.callbacks[0].rows.coco/map: (a key) 'coco' is not a configured dataset; the datasets are: "
        "blobs, dots (the keys of the datasets section) for callbacks 'baseline_table'",
        "training.early_stop.metric: 'blobs/acuracy' is not a result of the metrics of dataset 'blobs' "
        "(evaluation.metrics.blobs: blobs/accuracy, blobs/recall/*)",
    ]


def test_round_robin_order_and_strategy_datasets_name_datasets():
    found = problems("training.sampler={type: round_robin, order: [blobs, blobs]}",
                     "training.step_strategy={type: masked_combine, group_a: [a], group_b: [b], datasets: [dot]}")
    assert any(p.startswith("training.sampler.order.dots: missing") for p in found)
    assert any(p.startswith("training.step_strategy.datasets[0]: 'dot' is not a configured dataset") for p in found)


def test_a_metric_key_needs_a_dataset_and_a_slash():
    found = problems("training.early_stop.metric=accuracy")
    assert found == ["training.early_stop.metric: 'accuracy' is not <dataset>/<metric>, e.g. 'blobs/accuracy'"]


def test_model_tasks_of_a_nested_model_are_checked_at_their_path():
    found = problems("model={type: unit_tiny, tasks: {blobs: {task: detection}, dotz: {modality: audio}}}")
    assert "model.tasks.dotz: (a key) 'dotz' is not a configured dataset; did you mean 'dots'? the datasets " \
           "are: blobs, dots (the keys of the datasets section) for models 'unit_tiny'" in found
    assert "model.tasks.dotz.modality: 'audio' is not one of 'auto', 'image', 'text', 'image_text' for models " \
           "'unit_tiny'" in found


def test_a_head_node_inside_model_tasks_is_validated_as_a_head():
    found = problems("model={type: unit, decoder: {type: detr_decoder, hiden_size: 8}, "
                     "tasks: {blobs: {head: {type: mlp_classifier_head, dropuot: 0.1}}}}")
    assert "model.decoder.hiden_size: unknown argument of decoders 'detr_decoder'; did you mean hidden_size or ffn_size?" in found
    assert "model.tasks.blobs.head.dropuot: unknown argument of heads 'mlp_classifier_head'; did you mean " \
           "dropout?" in found
    # the arguments the model passes itself (query counts, class counts) are not asked of the config
    assert not any("num_queries" in p or "num_classes" in p for p in found)


def test_builder_errors_are_reported_at_the_nodes_path():
    with pytest.raises(ConfigError) as err:
        TASK_SAMPLERS.build({"type": "ratios", "ratios": {"a": 1}}, path="training.sampler",
                            dataset_sizes={"a": 3, "b": 4}, seed=0)
    assert err.value.problems == ["training.sampler.ratios.b: missing; give every training dataset a ratio "
                                  "(ratios.b=0 never draws it)"]
    with pytest.raises(ConfigError) as err:
        STEP_STRATEGIES.build({"type": "masked_combine", "group_a": ["(unclosed"], "group_b": ["b"]},
                              path="training.step_strategy")
    assert err.value.problems[0].startswith("training.step_strategy.group_a[0]: '(unclosed' is not a valid regex")


def test_declared_ranges_are_checked_when_a_part_is_built_from_code():
    with pytest.raises(ConfigError, match=r"scheduler\.warmup_ratio: 1\.5 must be at most 1"):
        from unimm.registry import SCHEDULERS

        SCHEDULERS.build({"type": "warmup_linear", "warmup_ratio": 1.5}, path="scheduler", optimizer=None,
                         max_updates=10)

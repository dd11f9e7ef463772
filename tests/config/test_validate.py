from pathlib import Path

import pytest

from tests.conftest import REPO
from unimm.config import ConfigError, load_config, validate_config
from unimm.plugins import import_builtins, load_user_dirs

QUICKSTART = REPO / "projects" / "quickstart"


@pytest.fixture(scope="module", autouse=True)
def parts():
    import_builtins()
    load_user_dirs([str(QUICKSTART)])


def good_overrides() -> list[str]:
    return ["model.type=mlp_classifier", "datasets.blobs.type=blobs", "datasets.blobs.num_samples=64"]


def problems(overrides: list[str], path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate_config(load_config(path, good_overrides() + overrides))
    return err.value.problems


def test_a_good_config_validates_to_plain_containers():
    cfg = validate_config(load_config(None, good_overrides()))
    assert cfg["model"] == {"type": "mlp_classifier"}
    assert cfg["datasets"]["blobs"]["num_samples"] == 64
    assert isinstance(cfg["training"], dict)


def test_the_shipped_quickstart_config_validates():
    validate_config(load_config(QUICKSTART / "configs" / "blobs_mlp.yaml"))


def test_unknown_key_in_a_fixed_section_names_its_path_and_suggests():
    (problem,) = problems(["training.max_update=3"])
    assert problem.startswith("training.max_update: unknown key; did you mean max_updates?")


def test_misspelled_part_name_suggests_the_registered_one():
    (problem,) = problems(["model.type=mlp_clasifier"])
    assert problem.startswith("model.type: unknown models name 'mlp_clasifier'")
    assert "'mlp_classifier'" in problem


def test_unknown_builder_argument_suggests_the_real_one():
    (problem,) = problems(["datasets.blobs.num_sample=3"])
    assert problem.startswith("datasets.blobs.num_sample: unknown argument of datasets 'blobs'")
    assert "num_samples" in problem


def test_wrongly_typed_arguments_and_leaves_are_caught():
    found = problems(["datasets.blobs.num_samples=many", "training.batch_size=2.5", "optimizer.lr=fast"])
    assert any(p.startswith("datasets.blobs.num_samples: expected int, got 'many'") for p in found)
    assert any(p.startswith("training.batch_size: expected int, got 2.5") for p in found)
    assert any(p.startswith("optimizer.lr:") for p in found)


def test_choices_are_enforced():
    (problem,) = problems(["run_type=fit"])
    assert problem.startswith("run_type: 'fit' is not one of train, val, test, train_val, predict")


def test_every_problem_is_reported_at_once():
    found = problems(["training.max_update=3", "model.type=nope", "scheduler.type=warmup_cosin",
                      "env.sed=1", "evaluation.metrics.missing=[accuracy]", "training.amp=fp8"])
    paths = {p.split(":")[0] for p in found}
    assert {"training.max_update", "model.type", "scheduler.type", "env.sed",
            "evaluation.metrics.missing", "training.amp"} <= paths


def test_missing_required_value_and_unresolvable_interpolation(tmp_path):
    cfg = load_config(None, ["datasets.blobs.type=blobs", "env.save_dir=${oc.env:UNIMM_TEST_NOT_SET}"])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    text = str(err.value)
    assert "model: no value given; set it in the YAML or as model=..." in text
    assert "env.save_dir: cannot resolve" in text


def test_metric_nodes_in_lists_are_checked():
    (problem,) = problems(["evaluation.metrics.blobs=[accuracy, acuracy]"])
    assert problem.startswith("evaluation.metrics.blobs[1]: unknown metrics name 'acuracy'")


def test_list_index_override_reaches_validation():
    found = problems(["training.optimizer_hooks=[skip_zero_grad]", "training.optimizer_hooks[0]=skip_zero_gradd"])
    assert found[0].startswith("training.optimizer_hooks[0]: unknown optimizer_hooks name 'skip_zero_gradd'")


def test_required_builder_argument_is_reported():
    (problem,) = problems(["training.sampler.type=ratios"])
    assert problem.startswith("training.sampler.ratios: required by task_samplers 'ratios'")


@pytest.mark.parametrize("override, problem", [
    ("training.clip_grad_norm=-1", "training.clip_grad_norm: -1 must be greater than 0"),
    ("training.grad_accum_steps=0", "training.grad_accum_steps: 0 must be at least 1"),
    ("evaluation.max_batches=-1", "evaluation.max_batches: -1 must be at least 1"),
    ("evaluation.batch_size=0", "evaluation.batch_size: 0 must be at least 1"),
    ("training.batch_size=0", "training.batch_size: 0 must be at least 1"),
    ("training.batch_size=-4", "training.batch_size: -4 must be at least 1"),
    ("training.log_every=0", "training.log_every: 0 must be at least 1"),
    ("training.num_workers=-1", "training.num_workers: -1 must be at least 0"),
    ("training.max_epochs=0", "training.max_epochs: 0 must be greater than 0"),
    ("checkpoint.keep_last=0", "checkpoint.keep_last: 0 must be at least 1"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay: -1 must be at least 0 for optimizers 'adamw'"),
    ("datasets=[blobs]", "datasets: expected a mapping of dataset names to dataset nodes, e.g. 'datasets: "
                         "{sst2: {type: glue, ...}}', got a list"),
    ("checkpoint.resume=maybe", "checkpoint.resume: 'maybe' is not one of False, True, if_exists"),
])
def test_a_number_outside_its_range_or_a_wrong_shape_is_named_with_the_allowed_range(override, problem):
    assert problems([override, "optimizer.type=adamw", "optimizer.lr=0.1"]) == [problem]


def test_null_max_updates_needs_max_epochs():
    assert problems(["training.max_updates=null"]) == [
        "training.max_updates: null, and so is training.max_epochs; set at least one of them"]


@pytest.mark.parametrize("content, problem", [
    (b"42\n", "the top level must be a mapping of keys, not a single value ('42')"),
    (b"- a\n- b\n", "the top level must be a mapping of keys, not a list"),
    (b"model: caf\xe9\n", "not UTF-8 text (byte 10: b'\\xe9'); save the file as UTF-8"),
    (b"a: [\n", "cannot read YAML: line 2, column 1: expected the node content"),
])
def test_a_config_file_that_is_not_a_mapping_names_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.source == str(path) and err.value.problems[0].startswith(problem)


def test_an_empty_config_file_is_named_in_the_errors_it_leads_to(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# every key comes from the command line\n")
    with pytest.raises(ConfigError, match=r"2 config errors in .*empty\.yaml \(with its includes and overrides\)"):
        validate_config(load_config(path), source=str(path))


def test_init_resize_takes_regexes_or_rules_with_their_prefix_rows():
    """checkpoint.init_resize: a regex keeps one prefix row; {pattern, num_prefix_tokens} names them (2: DeiT)."""
    rules = "checkpoint.init_resize=[pos_embed$, {pattern: dist_pos$, num_prefix_tokens: 2}]"
    cfg = validate_config(load_config(None, good_overrides() + [rules]))
    assert cfg["checkpoint"]["init_resize"] == ["pos_embed$", {"pattern": "dist_pos$", "num_prefix_tokens": 2}]
    found = problems(["checkpoint.init_resize=[{pattern: pos_embed$, num_prefix_tokens: -1}, {pattern: x, prefix: 2}]"])
    assert found == ["checkpoint.init_resize[0].num_prefix_tokens: -1 must be at least 0",
                     "checkpoint.init_resize[1].prefix: unknown key; use pattern, num_prefix_tokens",
                     "checkpoint.init_resize[1].num_prefix_tokens: required; set it"]

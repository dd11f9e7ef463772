import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from unimm.config import ConfigError, load_config, parse_overrides


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_sit_under_the_user_file(tmp_path):
    cfg = load_config(write(tmp_path / "a.yaml", "training:\n  batch_size: 3\n"))
    assert cfg.training.batch_size == 3
    assert cfg.training.grad_accum_steps == 1  # from defaults.yaml
    assert OmegaConf.is_missing(cfg, "model")


def test_includes_compose_in_order_and_the_including_file_wins(tmp_path):
    write(tmp_path / "base" / "one.yaml", "training: {batch_size: 1, max_updates: 10}\nrun_type: val\n")
    write(tmp_path / "base" / "two.yaml", "training: {batch_size: 2}\nenv: {seed: 7}\n")
    main = write(tmp_path / "main.yaml", """\
        includes: [base/one.yaml, base/two.yaml]
        env: {seed: 9}
        """)
    cfg = load_config(main)
    assert cfg.training.batch_size == 2  # two.yaml after one.yaml
    assert cfg.training.max_updates == 10  # only one.yaml sets it
    assert cfg.run_type == "val"
    assert cfg.env.seed == 9  # the including file wins
    assert "includes" not in cfg


def test_nested_includes_resolve_beside_the_including_file(tmp_path):
    write(tmp_path / "deep" / "leaf.yaml", "training: {batch_size: 5}\n")
    write(tmp_path / "deep" / "mid.yaml", "includes: [leaf.yaml]\n")
    cfg = load_config(write(tmp_path / "top.yaml", "includes: [deep/mid.yaml]\n"))
    assert cfg.training.batch_size == 5


def test_include_cycle_is_reported(tmp_path):
    write(tmp_path / "a.yaml", "includes: [b.yaml]\n")
    write(tmp_path / "b.yaml", "includes: [a.yaml]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_missing_include_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_config(write(tmp_path / "a.yaml", "includes: [nope.yaml]\n"))


def test_bad_yaml_names_the_file(tmp_path):
    path = write(tmp_path / "bad.yaml", "training: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_overrides_set_nested_keys_and_parse_values(tmp_path):
    cfg = load_config(None, ["training.batch_size=4", "optimizer.lr=1e-4", "env.user_dir=[a, b]",
                             "model.type=x", "training.clip_grad_norm=null", "new.key=on"])
    assert cfg.training.batch_size == 4
    assert cfg.optimizer.lr == pytest.approx(1e-4) and isinstance(cfg.optimizer.lr, float)
    assert list(cfg.env.user_dir) == ["a", "b"]
    assert cfg.training.clip_grad_norm is None
    assert cfg.new.key is True  # YAML 1.1 on; unknown keys are caught by validation, not here


def test_list_index_override(tmp_path):
    path = write(tmp_path / "a.yaml", """\
        training:
          param_groups:
            - {pattern: backbone, lr_mult: 0.1}
            - {pattern: head, lr_mult: 10.0}
        """)
    cfg = load_config(path, ["training.param_groups[1].lr_mult=5.0", "training.param_groups[0].pattern=x"])
    assert cfg.training.param_groups[1].lr_mult == 5.0
    assert cfg.training.param_groups[0].pattern == "x"
    assert cfg.training.param_groups[0].lr_mult == 0.1


def test_a_list_element_written_with_a_dot_names_the_bracket_form(tmp_path):
    path = write(tmp_path / "a.yaml", """\
        training:
          param_groups:
            - {pattern: backbone, lr_mult: 0.1}
        """)
    with pytest.raises(ConfigError, match=r"'training.param_groups' is a list; an element is written "
                                          r"training.param_groups\[0\]"):
        load_config(path, ["training.param_groups.0.lr_mult=5.0"])


def test_list_index_out_of_range_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"index 3 is out of range for 'training.optimizer_hooks' \(it has 0"):
        load_config(None, ["training.optimizer_hooks[3]=skip_zero_grad"])


def test_malformed_overrides_are_all_reported():
    with pytest.raises(ConfigError) as err:
        parse_overrides(["novalue", "=1", "ok=2"])
    assert len(err.value.problems) == 2


def test_changing_a_part_type_replaces_the_node(tmp_path):
    write(tmp_path / "base.yaml", "optimizer: {type: adamw, lr: 0.1, betas: [0.9, 0.98]}\n")
    cfg = load_config(write(tmp_path / "a.yaml", "includes: [base.yaml]\noptimizer: {type: sgd, lr: 0.5}\n"))
    assert dict(cfg.optimizer) == {"type": "sgd", "lr": 0.5}


def test_same_part_type_merges_arguments(tmp_path):
    write(tmp_path / "base.yaml", "optimizer: {type: adamw, lr: 0.1, weight_decay: 0.01}\n")
    cfg = load_config(write(tmp_path / "a.yaml", "includes: [base.yaml]\noptimizer: {lr: 0.5}\n"))
    assert dict(cfg.optimizer) == {"type": "adamw", "lr": 0.5, "weight_decay": 0.01}


def test_environment_variables_and_data_root_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMM_DATA_DIR", str(tmp_path / "d"))
    path = write(tmp_path / "a.yaml", "datasets: {x: {type: blobs, root: '${env.data_dir}/x'}}\n")
    cfg = load_config(path)
    assert cfg.env.data_dir == str(tmp_path / "d")
    assert cfg.datasets.x.root == str(tmp_path / "d" / "x")


def test_relative_user_dir_is_relative_to_its_file(tmp_path):
    path = write(tmp_path / "proj" / "configs" / "a.yaml", "env: {user_dir: ..}\n")
    cfg = load_config(path)
    assert list(cfg.env.user_dir) == [str((tmp_path / "proj").resolve())]


def test_a_part_given_by_name_takes_sub_key_overrides():
    cfg = load_config(None, ["training.sampler.type=ratios", "training.step_strategy.datasets=[a]"])
    assert dict(cfg.training.sampler) == {"type": "ratios"}
    assert dict(cfg.training.step_strategy) == {"type": "sampled", "datasets": ["a"]}


def test_a_variant_layers_its_block_and_includes_over_the_file(tmp_path):
    write(tmp_path / "proj" / "small.yaml", "training: {batch_size: 2, max_updates: 7}\n")
    path = write(tmp_path / "proj" / "main.yaml", """\
        training: {batch_size: 64, max_updates: 1000}
        env: {seed: 5}
        variants:
          small:
            includes: [small.yaml]
            training: {max_updates: 9}
          other: {env: {seed: 6}}
        """)
    plain = load_config(path)
    assert plain.training.batch_size == 64 and "variants" not in plain
    small = load_config(path, ["env.seed=8"], variant="small")
    assert small.training.batch_size == 2  # from the variant's include
    assert small.training.max_updates == 9  # the variant's own keys win over its include
    assert small.env.seed == 8  # command-line overrides come last
    assert load_config(path, variant="other").env.seed == 6


def test_an_unknown_variant_lists_the_declared_ones(tmp_path):
    path = write(tmp_path / "a.yaml", "variants: {small: {}, big: {}}\n")
    with pytest.raises(ConfigError, match="variant 'tiny' is not declared by .*; its variants: big, small"):
        load_config(path, variant="tiny")


def test_a_variant_extended_by_an_including_file_keeps_its_includes(tmp_path):
    write(tmp_path / "small.yaml", "training: {batch_size: 2}\n")
    write(tmp_path / "base.yaml", "variants: {small: {includes: [small.yaml], training: {max_updates: 9}}}\n")
    path = write(tmp_path / "derived.yaml", "includes: [base.yaml]\nvariants: {small: {env: {seed: 4}}}\n")
    cfg = load_config(path, variant="small")
    assert (cfg.training.batch_size, cfg.training.max_updates, cfg.env.seed) == (2, 9, 4)


def test_a_plain_user_dir_or_plugin_name_becomes_a_list_of_one(tmp_path):
    cfg = load_config(None, ["env.user_dir=path/to/my_plugin", "env.plugins=my_plugin"])
    assert list(cfg.env.user_dir) == ["path/to/my_plugin"]  # relative to the working dir, resolved when loaded
    assert list(cfg.env.plugins) == ["my_plugin"]
    assert load_config(None, ["env.plugins=none"]).env.plugins == "none"
    assert list(load_config(None, ["env.user_dir=null"]).env.user_dir) == []


def test_a_user_dir_override_validates_as_given_by_the_readme(tmp_path):
    from unimm.config import validate_config

    with pytest.raises(ConfigError) as err:  # no model, no datasets: but env.user_dir is fine
        validate_config(load_config(None, ["env.user_dir=path/to/my_plugin"]))
    assert not [p for p in err.value.problems if "user_dir" in p]


def test_tilde_deletes_a_key_of_a_part_node(tmp_path):
    path = write(tmp_path / "a.yaml", "scheduler: {type: warmup_cosine, warmup_ratio: 0.1}\n")
    cfg = load_config(path, ["~scheduler.warmup_ratio", "scheduler.warmup_steps=20"])
    assert dict(cfg.scheduler) == {"type": "warmup_cosine", "warmup_steps": 20}


def test_tilde_on_a_key_of_the_defaults_puts_its_default_back(tmp_path):
    path = write(tmp_path / "a.yaml", "training: {max_updates: 7}\noptimizer: {type: sgd, lr: 0.5}\n")
    cfg = load_config(path, ["~training.max_updates", "~optimizer"])
    assert cfg.training.max_updates == 100  # defaults.yaml
    assert dict(cfg.optimizer) == {"type": "adamw", "lr": 5.0e-05}


def test_tilde_deletes_list_elements_and_whole_datasets(tmp_path):
    path = write(tmp_path / "a.yaml", """\
        datasets: {a: {type: x}, b: {type: y}}
        training: {param_groups: [{pattern: p, lr_mult: 0.1}, {pattern: q, lr_mult: 2.0}]}
        """)
    cfg = load_config(path, ["~datasets.b", "~training.param_groups[0]"])
    assert list(cfg.datasets) == ["a"]
    assert [g.pattern for g in cfg.training.param_groups] == ["q"]


def test_tilde_on_a_missing_key_is_an_error_with_close_names(tmp_path):
    path = write(tmp_path / "a.yaml", "scheduler: {type: warmup_cosine, warmup_ratio: 0.1}\n")
    with pytest.raises(ConfigError, match=r"no 'scheduler.min_lr_ratio', nothing to delete; scheduler has: "
                                          r"type, warmup_ratio"):
        load_config(path, ["~scheduler.min_lr_ratio"])
    with pytest.raises(ConfigError, match=r"did you mean ~scheduler.warmup_ratio\?"):
        load_config(path, ["~scheduler.warmup_rati"])
    with pytest.raises(ConfigError, match=r"no 'nope', nothing to delete"):
        load_config(path, ["~nope.x"])
    with pytest.raises(ConfigError, match=r"no 'training.param_groups\[0\]' to delete \(it has 0 elements\)"):
        load_config(path, ["~training.param_groups[0]"])
    with pytest.raises(ConfigError, match="a deletion is ~key.path alone, without a value"):
        load_config(path, ["~scheduler.warmup_ratio=0.1"])


def test_a_missing_user_dir_names_the_given_and_the_resolved_path(tmp_path):
    from unimm.plugins import load_user_dirs

    path = write(tmp_path / "configs" / "a.yaml", "env: {user_dir: ../my_plugin}\n")
    cfg = load_config(path)
    with pytest.raises(ConfigError) as err:
        load_user_dirs(list(cfg.env.user_dir))
    text = str(err.value)
    assert f"folder not found: {(tmp_path / 'my_plugin').resolve()}" in text
    assert f"given as '../my_plugin' in a config file in {tmp_path / 'configs'}, relative to that file" in text

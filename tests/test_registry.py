import pytest

from unimm.registry import REGISTRIES, Registry, RegistryError


@pytest.fixture
def widgets():
    reg = Registry("widgets", runtime_args=("params",))

    @reg.register()
    def round_widget(size: int = 1, params=None):
        """A round widget."""
        return ("round", size, params)

    @reg.register("square_widget")
    class Square:
        """A square one.

        More text.
        """

        def __init__(self, side: int):
            self.side = side

    return reg


def test_register_and_build(widgets):
    assert widgets.names() == ["round_widget", "square_widget"]
    assert widgets.build("round_widget") == ("round", 1, None)
    assert widgets.build({"type": "round_widget", "size": 3}, params=[1]) == ("round", 3, [1])
    assert widgets.build({"type": "square_widget", "side": 2}).side == 2


def test_runtime_args_only_reach_builders_that_accept_them(widgets):
    square = widgets.build({"type": "square_widget", "side": 5}, params=[1], other=2)
    assert square.side == 5


def test_duplicate_name_raises(widgets):
    with pytest.raises(RegistryError, match="'round_widget' is already registered"):
        widgets.register("round_widget")(lambda: None)


def test_unknown_name_suggests_close_matches(widgets):
    with pytest.raises(RegistryError) as err:
        widgets.get("rund_widget")
    assert "unknown widgets name 'rund_widget'" in str(err.value)
    assert "did you mean 'round_widget'" in str(err.value)


def test_unknown_name_without_match_lists_names(widgets):
    with pytest.raises(RegistryError, match="registered: round_widget, square_widget"):
        widgets.get("zzz")


def test_doc_is_first_docstring_line(widgets):
    assert widgets.get("square_widget").doc == "A square one."
    assert widgets.get("round_widget").module == __name__


def test_parts_are_built_before_the_parent():
    leaves = Registry("leaves")
    parents = Registry("parents")
    name = "leaf"
    leaves.register(name)(lambda width=1: {"leaf": width})

    @parents.register(parts={"child": leaves, "children": leaves})
    def parent(child, children):
        return child, children

    child, children = parents.build({
        "type": "parent",
        "child": {"type": name, "width": 3},
        "children": {"a": name, "b": {"type": name, "width": 2}},
    })
    assert child == {"leaf": 3}
    assert children == {"a": {"leaf": 1}, "b": {"leaf": 2}}


def test_every_kind_has_a_registry():
    expected = {"models", "encoders", "decoders", "heads", "datasets", "processors", "losses",
                "metrics", "optimizers", "schedulers", "optimizer_hooks", "task_samplers",
                "step_strategies", "callbacks"}
    assert expected <= set(REGISTRIES)


def test_a_node_without_type_is_rejected(widgets):
    with pytest.raises(RegistryError, match="mapping with 'type'"):
        widgets.build({"size": 1})

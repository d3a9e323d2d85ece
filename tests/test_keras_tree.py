"""``keras.tree`` against Keras 3's own on nested lists, tuples, namedtuples, dicts and ``None``."""
from __future__ import annotations

import collections

import pytest

import onnxforge.keras as ofk

K = pytest.importorskip("keras").tree
O = ofk.tree
P = collections.namedtuple("P", "x y")
CASES = [{"b": [1, (2, None)], "a": 3}, [1, [2, [3]]], P(1, {"z": 2, "a": [3]}),
         collections.OrderedDict([("z", 1), ("a", 2)]), None, 5, (), {"k": None}, [None, (None,)]]


@pytest.mark.parametrize("structure", CASES, ids=range(len(CASES)))
def test_walks_like_keras(structure):
    for fn in ("flatten", "flatten_with_path", "lists_to_tuples", "is_nested"):
        assert getattr(O, fn)(structure) == getattr(K, fn)(structure), fn
    for none_is_leaf in (True, False):
        assert O.map_structure(lambda x: (x, 1), structure, none_is_leaf=none_is_leaf) == \
            K.map_structure(lambda x: (x, 1), structure, none_is_leaf=none_is_leaf)
    flat = list(range(len(K.flatten(structure))))
    ours, theirs = O.pack_sequence_as(structure, flat), K.pack_sequence_as(structure, flat)
    assert ours == theirs and type(ours) is type(theirs)
    assert O.traverse(lambda x: O.MAP_TO_NONE if x == 2 else None, structure) == \
        K.traverse(lambda x: K.MAP_TO_NONE if x == 2 else None, structure)
    assert O.traverse(lambda x: None, structure, top_down=False) == K.traverse(lambda x: None, structure,
                                                                               top_down=False)


def test_shapes_up_to_and_structure_checks():
    shapes = {"a": (None, 3), "b": [(1,), (2, 3)]}
    assert O.map_shape_structure(len, shapes) == K.map_shape_structure(len, shapes)
    nested = {"a": [1, 2], "b": {"c": 3}}
    assert O.map_structure_up_to({"a": 0, "b": 0}, str, nested) == K.map_structure_up_to({"a": 0, "b": 0}, str,
                                                                                          nested)
    for a, b in [([1, 2], [1, [2]]), ({"a": 1}, {"b": 1}), ([1], (1,)), (P(1, 2), (1, 2))]:
        with pytest.raises(ValueError):
            O.assert_same_structure(a, b)
        with pytest.raises(ValueError):
            K.assert_same_structure(a, b)
    O.assert_same_structure({"a": 1}, collections.OrderedDict(a=2))
    with pytest.raises(ValueError, match="leaves"):
        O.pack_sequence_as([1, [2]], [1])

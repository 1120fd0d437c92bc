"""Property tests: malformed input raises WBXMLError and nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from easyncd.wbxml import Element, WBXMLError, decode, encode
from easyncd.wbxml.codepages import TOKEN_BY_TAG

_TAGS = sorted(TOKEN_BY_TAG)
_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_texts = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
    st.binary(max_size=40),
)


def _trees(max_leaves: int = 25) -> st.SearchStrategy[Element]:
    leaves = st.builds(Element, st.sampled_from(_TAGS), _texts)
    return st.recursive(
        leaves,
        lambda kids: st.builds(
            Element, st.sampled_from(_TAGS), st.none(), st.lists(kids, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def _decode_or_error(data: bytes) -> None:
    try:
        result = decode(data)
    except WBXMLError:
        return
    # Whatever decodes must encode again to the same tree.
    assert decode(encode(result)) == result


class FuzzTests(TestCase):
    """Random trees, random bytes, mutated and truncated documents."""

    @_SETTINGS
    @given(_trees())
    def test_round_trip(self, tree: Element) -> None:
        self.assertEqual(decode(encode(tree)), tree)

    @_SETTINGS
    @given(st.binary(max_size=200))
    def test_random_bytes(self, data: bytes) -> None:
        _decode_or_error(data)

    @_SETTINGS
    @given(st.binary(max_size=200))
    def test_random_bodies(self, body: bytes) -> None:
        _decode_or_error(b"\x03\x01\x6a\x00" + body)

    @_SETTINGS
    @given(_trees(), st.data())
    def test_truncations(self, tree: Element, data: st.DataObject) -> None:
        encoded = encode(tree)
        cut = data.draw(st.integers(0, len(encoded) - 1))
        self.assertRaises(WBXMLError, decode, encoded[:cut])

    @_SETTINGS
    @given(
        _trees(),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    )
    def test_mutations(self, tree: Element, edits: list[tuple[int, int]]) -> None:
        encoded = bytearray(encode(tree))
        for where, value in edits:
            encoded[where % len(encoded)] = value
        _decode_or_error(bytes(encoded))

    @_SETTINGS
    @given(_trees(), st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
    def test_insertions(self, tree: Element, where: int, junk: bytes) -> None:
        encoded = encode(tree)
        where %= len(encoded) + 1
        _decode_or_error(encoded[:where] + junk + encoded[where:])

    def test_deep_nesting_is_refused_quickly(self) -> None:
        data = b"\x03\x01\x6a\x00" + b"\x4f" * 1_000_000
        self.assertRaises(WBXMLError, decode, data)

    def test_huge_claimed_lengths(self) -> None:
        self.assertRaises(
            WBXMLError, decode, b"\x03\x01\x6a\x00\x45\xc3\x8f\xff\xff\xff\x7f\x41\x01"
        )
        self.assertRaises(WBXMLError, decode, b"\x03\x01\x6a\x8f\xff\xff\xff\x7f\x45\x01")

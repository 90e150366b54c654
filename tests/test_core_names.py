"""The name grammar and parameter checks."""

from __future__ import annotations

import math

import pytest

import hf_gem
from hf_gem.names import ActivationNameError, GemSpec, format_epsilon, is_gem_name, parse_name


@pytest.mark.parametrize(
    "name,variant,order,epsilon",
    [
        ("gem", "gem", 1, 1.0),
        ("gem_n2", "gem", 2, 1.0),
        ("GEM_N3", "gem", 3, 1.0),
        ("egem", "egem", 1, 1e-4),
        ("egem_eps10", "egem", 1, 10.0),
        ("e-gem_n2_eps0.5", "egem", 2, 0.5),
        ("egem_n3_eps0.25", "egem", 3, 0.25),
        ("segem", "segem", 1, 1e-4),
        ("SE-GEM_eps1e-6", "segem", 1, 1e-6),
        ("segem_n2_eps1e-4", "segem", 2, 1e-4),
        ("segem_n12_eps2.5E+3", "segem", 12, 2500.0),
    ],
)
def test_valid_names_parse(name, variant, order, epsilon):
    spec = parse_name(name)
    assert (spec.variant, spec.order, spec.epsilon) == (variant, order, epsilon)
    assert spec.smoothness_order == 2 * order
    assert parse_name(spec.name) == spec  # the canonical name round-trips
    assert is_gem_name(name)


def test_canonical_names_are_short():
    assert parse_name("segem_n1_eps0.0001").name == "segem"
    assert parse_name("egem_eps1e-6").name == "egem_eps1e-6"
    assert parse_name("egem_eps10.0").name == "egem_eps10"
    assert format_epsilon(2.5e-7) == "2.5e-7"


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("gem_n0", "N (the order)"),
        ("gem_n1.5", "N (the order)"),
        ("gem_n-1", "N (the order)"),
        ("egem_eps0", "epsilon"),
        ("egem_eps-1", "epsilon"),
        ("egem_epsnan", "epsilon"),
        ("egem_epsinf", "epsilon"),
        ("egem_epsabc", "epsilon"),
        ("gem_eps0.5", "egem_eps0.5"),
    ],
)
def test_bad_parameters_in_names_name_the_parameter(name, fragment):
    with pytest.raises(ValueError) as error:
        parse_name(name)
    assert fragment in str(error.value)
    assert isinstance(error.value, KeyError)


@pytest.mark.parametrize("name,closest", [("gme_n2", "gem_n2"), ("segm", "segem"), ("egme", "egem")])
def test_unknown_names_list_the_forms_and_the_closest_match(name, closest):
    with pytest.raises(ActivationNameError) as error:
        parse_name(name)
    message = str(error.value)
    assert f"Did you mean {closest!r}" in message
    for form in ("gem[_n<N>]", "egem[_n<N>][_eps<e>]", "segem[_n<N>][_eps<e>]"):
        assert form in message


@pytest.mark.parametrize(
    "build,fragment",
    [
        (lambda: hf_gem.GEM(order=0), "N (the order)"),
        (lambda: hf_gem.GEM(order=2.5), "N (the order)"),
        (lambda: hf_gem.GEM(order="2"), "N (the order)"),
        (lambda: hf_gem.EGEM(epsilon=0.0), "epsilon"),
        (lambda: hf_gem.EGEM(epsilon=-3), "epsilon"),
        (lambda: hf_gem.SEGEM(epsilon=math.nan), "epsilon"),
        (lambda: hf_gem.SEGEM(epsilon=math.inf), "epsilon"),
        (lambda: hf_gem.SEGEM(order=True), "N (the order)"),
        (lambda: hf_gem.egem(__import__("torch").ones(2), epsilon=-1), "epsilon"),
    ],
)
def test_bad_parameters_fail_at_construction(build, fragment):
    with pytest.raises(ValueError) as error:
        build()
    assert fragment in str(error.value)


def test_numpy_and_tensor_scalars_are_accepted():
    import numpy
    import torch

    assert hf_gem.EGEM(order=numpy.int64(2), epsilon=numpy.float32(10.0)).epsilon == 10.0
    assert hf_gem.SEGEM(order=torch.tensor(3), epsilon=torch.tensor(0.5)).order == 3
    with pytest.raises(ValueError, match="epsilon"):
        hf_gem.EGEM(epsilon=torch.ones(2))


def test_modules_describe_themselves():
    assert repr(hf_gem.GEM(2)) == "GEM(N=2)"
    assert repr(hf_gem.EGEM(1, 10)) == "EGEM(N=1, epsilon=10)"
    assert repr(hf_gem.SEGEM(2, 1e-4)) == "SEGEM(N=2, epsilon=1e-4)"
    assert hf_gem.activation_from_name("segem_n2").smoothness_order == 4
    assert GemSpec("egem", 2, 10.0).display_name == "E-GEM (N=2, epsilon=10)"

"""Hostile text in every carrier field: either the preflight refuses the carrier (naming it), or the
rendered files read back (Asterisk's config rules) as exactly the carrier's own sections and keys.

The oracle (carrier_oracle.py) computes the expected sections and key sets from the inventory
carrier, not from the renderer's own expected_structure().  Run with
`pytest --hypothesis-show-statistics` to see how many examples were refused / rendered.
"""
import copy
import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import carrier_oracle as oracle
import vicireg_carriers as carriers
import vicireg_render as render

MISSING = object()
# VICIREG_HYPOTHESIS_SCALE=10 for a deeper run (the default keeps the unit suite fast).
SCALE = float(os.environ.get("VICIREG_HYPOTHESIS_SCALE", "1"))
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])


def _carrier(base, changes):
    chan_sip, carrier = oracle.BASES[base]
    carrier = copy.deepcopy(carrier)
    for field, value in changes.items():
        if value is MISSING:
            carrier.pop(field, None)
        else:
            carrier[field] = value
    return chan_sip, carrier


@pytest.mark.parametrize("base", sorted(oracle.BASES))
def test_every_base_carrier_is_valid_and_renders(base):
    chan_sip, carrier = _carrier(base, {})
    assert oracle.render_outcome([carrier], chan_sip) == "rendered"


@pytest.mark.parametrize("base", sorted(oracle.BASES))
def test_the_oracle_notices_an_injected_section(base):
    """The oracle itself can fail: a section smuggled into a rendered file is caught."""
    chan_sip, carrier = _carrier(base, {})
    plan = carriers.carrier_plan([carrier], chan_sip)
    rendered = render.render_files(plan, oracle.drivers_for(chan_sip))
    rendered["plan"] = plan
    target = next(f for f in rendered["files"] if carrier["name"] in render.file_digests(rendered["files"][f]))
    for evil in ("\n[evil]\nkey=value\n", "\n#exec /bin/sh\n", "\nnat=yes\n"):
        broken = dict(rendered, files=dict(rendered["files"]), templates=dict(rendered["templates"]))
        broken["files"][target] += evil
        broken["templates"][target] += evil
        with pytest.raises(AssertionError):
            oracle.check_render([carrier], chan_sip, broken)


@pytest.mark.parametrize("field", oracle.FIELDS)
@settings(max_examples=int(70 * SCALE), **SETTINGS)
@given(data=st.data())
def test_one_hostile_field(field, data):
    """17 fields x 70 examples: one field replaced (or removed) on a valid carrier of each kind."""
    base = data.draw(st.sampled_from(sorted(oracle.BASES)), label="base")
    value = data.draw(st.one_of(oracle.FIELD_VALUES[field], st.just(MISSING)), label=field)
    chan_sip, carrier = _carrier(base, {field: value})
    event(oracle.render_outcome([carrier], chan_sip))


@settings(max_examples=int(600 * SCALE), **SETTINGS)
@given(data=st.data())
def test_several_hostile_fields_at_once(data):
    base = data.draw(st.sampled_from(sorted(oracle.BASES)), label="base")
    chosen = data.draw(st.lists(st.sampled_from(oracle.FIELDS), min_size=2, max_size=6, unique=True), label="fields")
    changes = {f: data.draw(st.one_of(oracle.FIELD_VALUES[f], st.just(MISSING)), label=f) for f in chosen}
    chan_sip, carrier = _carrier(base, changes)
    event(oracle.render_outcome([carrier], chan_sip))


@settings(max_examples=int(300 * SCALE), **SETTINGS)
@given(data=st.data())
def test_hostile_fields_among_several_carriers(data):
    """Several carriers in one run (names fixed): one hostile carrier must not change another's file."""
    chan_sip = data.draw(st.booleans(), label="chan_sip")
    bases = [b for b in sorted(oracle.BASES) if oracle.BASES[b][0] == chan_sip or b.startswith(("pjsip", "iax2"))]
    carrier_list = [_carrier(b, {})[1] for b in bases]
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        index = data.draw(st.integers(0, len(carrier_list) - 1), label="carrier")
        field = data.draw(st.sampled_from([f for f in oracle.FIELDS if f != "name"]), label="field")
        carrier_list[index][field] = data.draw(oracle.FIELD_VALUES[field], label=field)
    event(oracle.render_outcome(carrier_list, chan_sip))


def _megabyte(field, big):
    if field in ("codecs", "match"):
        return [big]
    if field == "options":
        return {"nat": big, "callerid": big[:300]}
    return big


@pytest.mark.parametrize("size_kind", range(len(oracle.MEGABYTE)))
@pytest.mark.parametrize("field", oracle.FIELDS)
def test_megabyte_values_in_every_field(field, size_kind):
    big = oracle.MEGABYTE[size_kind]
    for base in ("sip-reg", "pjsip-ip", "iax2-reg"):
        chan_sip, carrier = _carrier(base, {field: _megabyte(field, big)})
        outcome = oracle.render_outcome([carrier], chan_sip)
        if field != "active":  # 'active' is not validated: any string that is not yes-like means inactive
            assert outcome == "refused", (base, field)
    chan_sip, carrier = _carrier("sip-ip", {"options": {big[:1000]: "yes"}})
    assert oracle.render_outcome([carrier], chan_sip) == "refused"

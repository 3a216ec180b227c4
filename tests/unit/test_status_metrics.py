"""The status audit's node_exporter textfile (module_utils/vicireg_metrics), read back with
prometheus_client's own text parser."""
from prometheus_client.parser import text_string_to_metric_families

import vicireg_metrics as metrics
from status import vicireg_prometheus_text

ROWS = [
    {"name": "labsip", "driver": "sip", "state": "Registered", "verdict": "registered", "since_registration": 42,
     "conflicts": []},
    {"name": "labpjsip", "driver": "pjsip", "state": "Rejected", "verdict": "failed", "since_registration": None,
     "conflicts": ["conflict: VICIdial's pjsip-vicidial.conf (line 3) also registers ..."]},
    {"name": "labipauth", "driver": "sip", "state": "OK (1 ms)", "verdict": "reachable"},
]


def samples(text):
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_one_series_per_carrier_with_its_labels_and_values():
    got = samples(metrics.textfile("lab-a16-01", ROWS, now=1700000000.5))
    reg = {s[0]["carrier"]: s for s in got["vicireg_carrier_registered"]}
    assert {k: v[1] for k, v in reg.items()} == {"labsip": 1.0, "labpjsip": 0.0, "labipauth": 1.0}
    assert reg["labpjsip"][0] == {"host": "lab-a16-01", "carrier": "labpjsip", "protocol": "pjsip",
                                  "state": "Rejected", "verdict": "failed"}
    conflict = {s[0]["carrier"]: s[1] for s in got["vicireg_carrier_conflict"]}
    assert conflict == {"labsip": 0.0, "labpjsip": 1.0, "labipauth": 0.0}
    assert got["vicireg_status_last_run_timestamp_seconds"] == [({"host": "lab-a16-01"}, 1700000000.5)]
    assert got["vicireg_status_asterisk_up"] == [({"host": "lab-a16-01"}, 1.0)]
    assert got["vicireg_status_drift"] == [({"host": "lab-a16-01"}, 0.0)]


def test_seconds_since_registration_only_where_asterisk_shows_it():
    got = samples(metrics.textfile("h", ROWS, now=1))
    assert [(s[0]["carrier"], s[1]) for s in got["vicireg_carrier_seconds_since_registration"]] == [("labsip", 42.0)]
    text = metrics.textfile("h", ROWS[1:], now=1)
    assert "vicireg_carrier_seconds_since_registration" not in text  # no HELP/TYPE for an empty family


def test_label_values_are_escaped_and_read_back_unchanged():
    odd = 'a\\b"c\nd'
    rows = [{"name": "x", "driver": "sip", "state": odd, "verdict": "failed"}]
    text = metrics.textfile('host"1', rows, now=5)
    assert '\\\\b\\"c\\nd' in text
    got = samples(text)
    labels = got["vicireg_carrier_registered"][0][0]
    assert labels["state"] == odd and labels["host"] == 'host"1'


def test_a_dialer_whose_asterisk_is_down_and_the_filter():
    rows = [{"name": "a", "driver": "iax2", "state": "unavailable", "verdict": "failed",
             "cause": "Asterisk is not running"}]
    got = samples(vicireg_prometheus_text(rows, "d1", 10, False, True))
    assert got["vicireg_status_asterisk_up"][0][1] == 0.0 and got["vicireg_status_drift"][0][1] == 1.0
    assert got["vicireg_carrier_registered"][0][1] == 0.0
    assert metrics.escape_label("\n") == "\\n"

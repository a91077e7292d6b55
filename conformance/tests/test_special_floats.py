"""Edm.Single values that are not numbers: Graph writes them as the JSON strings "NaN", "INF" and "-INF" (OData
JSON format §7.1: IEEE 754 special values of Edm.Single/Edm.Double are strings), e.g. a mediaStream's
averageAudioDegradation when it could not be computed.

The server takes them at ingest and serves them back exactly as sent.  msgraph-sdk 1.65.0 and msgraph-beta-sdk
1.66.0 parse such a record without error, but they cannot hold those values: kiota-serialization-json 1.16.0's
`JsonParseNode.get_float_value()` returns a float only for a JSON number and None for anything else, so the
typed property is None (and the string is not kept in additional_data either, the property being a known one).
The tests assert that, next to raw checks of the wire.

The records are conftest.py's `special_floats_record` (the handcrafted record with a fixed id, three days back,
"NaN", "INF" and "-INF" in its streams, devices and a network) and a generated one (`generate --seed 42` sends
"NaN" for some averageAudioDegradation values).
"""

from __future__ import annotations

import re
import urllib.parse

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.communications.call_records.item.call_record_item_request_builder import (
    CallRecordItemRequestBuilder,
)
from msgraph.generated.models.call_records.call_record import CallRecord
from msgraph.generated.models.call_records.media_stream import MediaStream
from msgraph_beta.generated.communications.call_records.item.call_record_item_request_builder import (
    CallRecordItemRequestBuilder as BetaCallRecordItemRequestBuilder,
)
from msgraph_beta.generated.communications.call_records.item.sessions.sessions_request_builder import (
    SessionsRequestBuilder as BetaSessionsRequestBuilder,
)
from msgraph_beta.generated.models.call_records.call_record import CallRecord as BetaCallRecord
from msgraph_beta.generated.models.call_records.media_stream import MediaStream as BetaMediaStream

from support import get_json, http

ItemQ = CallRecordItemRequestBuilder.CallRecordItemRequestBuilderGetQueryParameters
BetaItemQ = BetaCallRecordItemRequestBuilder.CallRecordItemRequestBuilderGetQueryParameters
BetaSessionsQ = BetaSessionsRequestBuilder.SessionsRequestBuilderGetQueryParameters
SPECIAL = ("NaN", "INF", "-INF")
EXPAND = "?$expand=" + urllib.parse.quote("sessions($expand=segments)")


def config(query=None) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=query)


def special_values(value, path: str = "") -> dict[str, str]:
    """Every "NaN"/"INF"/"-INF" string in a JSON value, by its path (`sessions[0].segments[0]...`)."""
    found = {}
    if isinstance(value, dict):
        for k, v in value.items():
            found.update(special_values(v, f"{path}.{k}" if path else k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.update(special_values(v, f"{path}[{i}]"))
    elif isinstance(value, str) and value in SPECIAL:
        found[path] = value
    return found


def media_of(sessions: list[dict]) -> dict:
    return sessions[0]["segments"][0]["media"][0]


def test_kiota_get_float_value_gives_none_for_the_strings():
    """What the SDKs do with the strings (kiota-serialization-json 1.16.0): get_float_value() answers None for
    "NaN", "INF" and "-INF" (and a float for a number); it raises nothing."""
    for text in SPECIAL:
        assert JsonParseNode(text).get_float_value() is None, text
    assert JsonParseNode(0.25).get_float_value() == 0.25
    assert JsonParseNode(3).get_float_value() == 3.0


def test_special_floats_are_served_as_sent(server):
    """Graph (Edm.Single, OData JSON §7.1): "NaN", "INF" and "-INF" given at ingest for stream, device and network
    measures come back on the wire as those strings, in the same places, under /v1.0 and /beta, expanded on the
    record and in the segments list; the numbers next to them stay JSON numbers."""
    sent = server.special_floats
    rid = sent["id"]
    want = special_values(sent)
    assert set(want.values()) == set(SPECIAL) and len(want) == 11, want
    for root in (server.base_url, server.root + "/beta"):
        rec = get_json(f"{root}/communications/callRecords/{rid}{EXPAND}")
        assert special_values(rec) == want, root
        media = media_of(rec["sessions"])
        assert media["streams"][1]["maxRatioOfConcealedSamples"] == pytest.approx(0.07192807)
        assert media["calleeDevice"]["speakerGlitchRate"] == 182
    session = sent["sessions"][0]
    segments = get_json(f"{server.base_url}/communications/callRecords/{rid}/sessions/"
                        f"{urllib.parse.quote(session['id'], safe='')}/segments")
    assert special_values(segments["value"][0]) == special_values(session["segments"][0])
    # The bytes on the wire hold the strings themselves, quoted, as the sender wrote them.
    wire = http("GET", f"{server.base_url}/communications/callRecords/{rid}{EXPAND}").text
    for path, text in want.items():
        name = path.rsplit(".", 1)[1]
        assert re.search(r'"%s"\s*:\s*"%s"' % (name, re.escape(text)), wire), (path, text)


def _check_typed_media(media, stream_type) -> None:
    s0, s1 = media.streams
    assert isinstance(s0, stream_type) and isinstance(s1, stream_type)
    # "NaN", "INF", "-INF" -> None (kiota's get_float_value), not kept in additional_data.
    assert (s0.average_audio_degradation, s0.average_packet_loss_rate, s0.average_ratio_of_concealed_samples) == (
        None, None, None)
    assert (s1.average_audio_degradation, s1.average_packet_loss_rate, s1.average_ratio_of_concealed_samples,
            s1.max_packet_loss_rate) == (None, None, None, None)
    for stream in (s0, s1):
        assert not {"averageAudioDegradation", "averagePacketLossRate"} & set(stream.additional_data)
    assert media.caller_device.mic_glitch_rate is None and media.caller_device.speaker_glitch_rate is None
    assert media.callee_device.mic_glitch_rate is None
    assert media.caller_network.sent_quality_event_ratio is None
    # The ordinary numbers around them are read as usual.
    assert s0.max_packet_loss_rate == 0 and s0.average_bandwidth_estimate == 9965083
    assert s1.max_ratio_of_concealed_samples == pytest.approx(0.07192807, rel=1e-6)
    assert media.callee_device.speaker_glitch_rate == 182
    assert media.caller_network.received_quality_event_ratio == pytest.approx(0.27)


def test_v1_sdk_reads_special_floats_as_none(server, client, run):
    """msgraph-sdk (v1.0): the record with "NaN"/"INF"/"-INF" measures parses without error into CallRecord;
    each such Edm.Single property is None (kiota's get_float_value takes only JSON numbers), the numbers next to
    them are typed as usual."""
    rid = server.special_floats["id"]
    rec = run(client.communications.call_records.by_call_record_id(rid).get(
        config(ItemQ(expand=["sessions($expand=segments)"]))))
    assert isinstance(rec, CallRecord) and rec.id == rid
    _check_typed_media(rec.sessions[0].segments[0].media[0], MediaStream)


def test_beta_sdk_reads_special_floats_as_none(server, beta_client, run):
    """msgraph-beta-sdk: the same record through /beta (record with $expand, and the sessions list with
    $expand=segments) parses without error; the "NaN"/"INF"/"-INF" measures are None there too."""
    rid = server.special_floats["id"]
    builder = beta_client.communications.call_records.by_call_record_id(rid)
    rec = run(builder.get())
    assert isinstance(rec, BetaCallRecord) and rec.id == rid
    sessions = run(builder.sessions.get(config(BetaSessionsQ(expand=["segments"])))).value
    assert len(sessions) == 1
    _check_typed_media(sessions[0].segments[0].media[0], BetaMediaStream)


@pytest.fixture(scope="module")
def generated_nan_record(server) -> tuple[str, dict, dict]:
    """The smallest generated record served with a "NaN" averageAudioDegradation: (id, its raw v1.0 form with
    sessions and segments, the special values by path)."""
    for rid in server.generated_nan_ids:
        raw = get_json(f"{server.base_url}/communications/callRecords/{rid}{EXPAND}")
        if "sessions@odata.nextLink" in raw:
            continue
        found = special_values(raw)
        if found:
            return rid, raw, found
    pytest.fail(f"no generated record is served with \"NaN\" (candidates: {server.generated_nan_ids[:5]})")


def test_generated_nan_record_reads_through_both_sdks(server, client, beta_client, run, generated_nan_record):
    """The generator's "NaN" averageAudioDegradation (seed 42) is served as the string and the record parses
    through msgraph-sdk and msgraph-beta-sdk without error; those streams' averageAudioDegradation is None, the
    other streams' the number served."""
    rid, raw, found = generated_nan_record
    assert set(found.values()) == {"NaN"}
    assert all(path.endswith(".averageAudioDegradation") for path in found), found
    for sdk, query in ((client, ItemQ), (beta_client, BetaItemQ)):
        rec = run(sdk.communications.call_records.by_call_record_id(rid).get(
            config(query(expand=["sessions($expand=segments)"]))))
        assert rec.id == rid and len(rec.sessions) == len(raw["sessions"])
        nan_seen = numbers_seen = 0
        for i, session in enumerate(rec.sessions):
            for j, segment in enumerate(session.segments):
                for k, media in enumerate(segment.media or []):
                    for m, stream in enumerate(media.streams or []):
                        wire = raw["sessions"][i]["segments"][j]["media"][k]["streams"][m]["averageAudioDegradation"]
                        if wire == "NaN":
                            assert stream.average_audio_degradation is None
                            nan_seen += 1
                        elif wire is not None:
                            assert stream.average_audio_degradation == pytest.approx(wire, rel=1e-6)
                            numbers_seen += 1
        assert nan_seen == len(found) and numbers_seen > 0, (nan_seen, numbers_seen)
